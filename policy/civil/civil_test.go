package civil

import (
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	t.Parallel()
	good := map[string]Date{"2022-04-28": 20220428, "2024-02-29": 20240229, "2000-02-29": 20000229}
	for in, want := range good {
		got, err := ParseDate(in)
		if err != nil || got != want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	for _, in := range []string{"", "2022-4-28", "2022/04/28", "2023-02-29", "1900-02-29", "2022-13-01", "2022-00-10", "2022-04-31", "20220428", "２０２２-04-28", "+022-04-28"} {
		if d, err := ParseDate(in); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", in, d)
		}
	}
}

func TestParseMonth(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Month{"202101": 202101, "2021-12": 202112} {
		if got, err := ParseMonth(in); err != nil || got != want {
			t.Errorf("ParseMonth(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2021", "202113", "202100", "2021-1", "21-01", "2021/01", "2021-011"} {
		if m, err := ParseMonth(in); err == nil {
			t.Errorf("ParseMonth(%q) = %v, want an error", in, m)
		}
	}
	if got := Month(202103).Compact(); got != "202103" {
		t.Errorf("Compact = %q", got)
	}
}

func TestArithmetic(t *testing.T) {
	t.Parallel()
	if got := MustDate(2022, 2, 28).AddDays(1); got != 20220301 {
		t.Errorf("2022-02-28 + 1 = %v", got)
	}
	if got := MustDate(2021, 12, 31).AddDays(1); got != 20220101 {
		t.Errorf("2021-12-31 + 1 = %v", got)
	}
	if got := MustDate(2022, 5, 7).Weekday(); got != time.Saturday {
		t.Errorf("2022-05-07 is a %v, want Saturday", got)
	}
	// 00:30 on 2022-04-28 in Shanghai is still 2022-04-27 in UTC.
	at := time.Date(2022, 4, 27, 16, 30, 0, 0, time.UTC)
	if got := DateOf(at); got != 20220428 {
		t.Errorf("DateOf(%v) = %v, want 2022-04-28", at, got)
	}
	if got := MustDate(2022, 4, 28).MonthOf(); got != 202204 {
		t.Errorf("MonthOf = %v", got)
	}
}

func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2022-04-28", "2024-02-29", "0000-00-00", "9999-99-99", "2022-4-28"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err != nil {
			return
		}
		if d.String() != s {
			t.Fatalf("ParseDate(%q) = %v, which prints as %q", s, d, d.String())
		}
		if d.AddDays(1) <= d || d.AddDays(-1) >= d {
			t.Fatalf("AddDays does not move %v", d)
		}
	})
}

func FuzzParseMonth(f *testing.F) {
	for _, s := range []string{"202101", "2021-12", "000000", "9999-99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMonth(s)
		if err != nil {
			return
		}
		if m.Compact() != s && m.String() != s {
			t.Fatalf("ParseMonth(%q) = %v", s, m)
		}
	})
}
