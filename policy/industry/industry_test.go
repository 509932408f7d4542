package industry

import (
	"errors"
	"testing"
)

func TestTertiary(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"5211": true, "0111": false, "0511": true, "1110": true, "1311": false, "4310": true,
		"4411": false, "4710": false, "6110": true, "9700": true, "F5211": true, "f5211": true,
		"A0511": true, "C4310": true, "R9011": true,
	}
	for in, want := range tests {
		c, err := Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if got := c.Tertiary(); got != want {
			t.Errorf("%q tertiary = %v, want %v", in, got, want)
		}
	}
}

func TestParseBad(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"C5211", "9999", "0011", "", "521", "52111", "5a11", "FF5211", "１２３４", "9811", "-521", "S9011"} {
		if c, err := Parse(in); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%q) = %q, %v; want ErrSyntax", in, c, err)
		}
	}
	c, _ := Parse("F5211")
	if c != "5211" || c.Section() != 'F' || c.Division() != 52 {
		t.Errorf("Parse(F5211) = %q section %c division %d", c, c.Section(), c.Division())
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"5211", "F5211", "C5211", "9999", "0111", "T9700"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if len(c) != 4 || c.Section() == 0 {
			t.Fatalf("Parse(%q) = %q with section %q", s, c, c.Section())
		}
		if again, err := Parse(string(c)); err != nil || again != c {
			t.Fatalf("Parse(%q) again = %q, %v", c, again, err)
		}
	})
}
