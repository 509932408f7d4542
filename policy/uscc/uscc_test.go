package uscc

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Status
		bad  bool
	}{
		{"91440300708461136T", Valid, false},
		{"914403001922038216", Valid, false},
		{"91350200776049653A", Valid, false},
		{"91440101MA5CJQ4N59", Valid, false},
		{"123502001549897397", Valid, false},
		{"92371581MA3P2D6H90", Valid, false},
		{"91350203M0001QAY9B", Hold, false},
		{"91440300708461136U", Hold, false},
		{"91440300708461136S", 0, true},  // S is not in the alphabet
		{"9144030A708461136T", 0, true},  // letter in the region code
		{"91440300708461136", 0, true},   // 17 characters
		{"91440300708461136TT", 0, true}, // 19 characters
		{"", 0, true},
		{"9144030070846113Ｔ", 0, true}, // not normalized: full-width is 3 bytes
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Check(tt.in)
			if tt.bad {
				if !errors.Is(err, ErrBad) {
					t.Fatalf("Check(%q) = %v, %v; want ErrBad", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Check(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"  91440101ma5cjq4n59 ":    "91440101MA5CJQ4N59",
		"９１４４０１０１ＭＡ５ＣＪＱ４Ｎ５９":       "91440101MA5CJQ4N59",
		"\u300091440300708461136t": "91440300708461136T",
		"91440300708461136T":       "91440300708461136T",
	}
	for in, want := range tests {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
		if _, st, err := Parse(in); err != nil || st != Valid {
			t.Errorf("Parse(%q) = %v, %v; want valid", in, st, err)
		}
	}
}

func TestCheckCharRoundTrip(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"91440300708461136T", "92371581MA3P2D6H90", "123502001549897397"} {
		c, err := CheckChar(code[:17])
		if err != nil || c != code[17] {
			t.Errorf("CheckChar(%q) = %q, %v; want %q", code[:17], c, err, code[17])
		}
	}
}

func TestOrgCode(t *testing.T) {
	t.Parallel()
	if !OrgCodeValid("91440300708461136T") {
		t.Error("70846113-6 should be a valid organization code")
	}
	if OrgCodeValid("91440300708461137T") {
		t.Error("70846113-7 should not be a valid organization code")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"91440300708461136T", "91350203M0001QAY9B", "", "ｚ", strings.Repeat("9", 18), "9144030A708461136T"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, st, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBad) {
				t.Fatalf("Parse(%q): error %v does not wrap ErrBad", s, err)
			}
			return
		}
		if len(code) != Length || (st != Valid && st != Hold) {
			t.Fatalf("Parse(%q) = %q, %v", s, code, st)
		}
		want, _ := CheckChar(code[:17])
		if (st == Valid) != (code[17] == want) {
			t.Fatalf("Parse(%q): status %v disagrees with check char %q", s, st, want)
		}
		if Normalize(code) != code {
			t.Fatalf("Normalize is not idempotent on %q", code)
		}
	})
}
