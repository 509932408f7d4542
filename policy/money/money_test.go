package money

import (
	"strings"
	"testing"
)

func TestParseYuan(t *testing.T) {
	t.Parallel()
	good := map[string]int64{
		"1234.56": 123456, "1,234.56": 123456, "0": 0, "0.5": 50, "0.05": 5, "12": 1200,
		" 7.1 ": 710, "1,234,567.89": 123456789, "100,000": 10000000, "00012.30": 1230,
		"9,999,999,999,999,999.99": 999999999999999999,
	}
	for in, want := range good {
		if got, err := ParseYuan(in); err != nil || got != want {
			t.Errorf("ParseYuan(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	bad := []string{"", " ", "-1", "-0.01", "1.234", "12.", ".5", "1e3", "abc", "1,23.00", "1234,567", ",123", "1,,234",
		"12,34", "1.2.3", "+5", "１２", "10000000000000000", "999999999999999999999", "1 234", "¥12", "12元", "NaN"}
	for _, in := range bad {
		if got, err := ParseYuan(in); err == nil {
			t.Errorf("ParseYuan(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatYuan(t *testing.T) {
	t.Parallel()
	for fen, want := range map[int64]string{0: "0.00", 5: "0.05", 123456: "1234.56", -5: "-0.05", 100: "1.00"} {
		if got := FormatYuan(fen); got != want {
			t.Errorf("FormatYuan(%d) = %q, want %q", fen, got, want)
		}
	}
}

func FuzzParseYuan(f *testing.F) {
	for _, s := range []string{"1234.56", "1,234.56", "0.05", "-1", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fen, err := ParseYuan(s)
		if err != nil {
			return
		}
		if fen < 0 {
			t.Fatalf("ParseYuan(%q) = %d < 0", s, fen)
		}
		// The canonical form reads back to the same fen.
		back, err := ParseYuan(FormatYuan(fen))
		if err != nil || back != fen {
			t.Fatalf("round trip of %q: %d → %q → %d, %v", s, fen, FormatYuan(fen), back, err)
		}
		if !strings.ContainsAny(s, "0123456789") {
			t.Fatalf("ParseYuan(%q) accepted no digits", s)
		}
	})
}
