// Package money parses and formats amounts of renminbi. Every amount in
// Wengang is an int64 count of fen (分, 0.01 yuan); there is no float
// anywhere on the way from a source file to a payment instruction.
package money

import (
	"errors"
	"fmt"
)

// ErrSyntax is wrapped by every parse error of this package.
var ErrSyntax = errors.New("invalid amount")

// maxYuan bounds amounts far above any refund and far below overflow.
const maxYuan = 1e16 - 1

// ParseYuan parses an amount in yuan with at most two decimals, such as
// "1234.56", "1,234.56" or "0.5", and returns it in fen. Thousands
// separators must group digits by three. Negative amounts, more than two
// decimals, exponents and anything else are errors; nothing is rounded.
// Surrounding spaces are ignored.
func ParseYuan(s string) (int64, error) {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	t := s[i:j]
	if t == "" {
		return 0, fmt.Errorf("%w: empty", ErrSyntax)
	}
	if t[0] == '-' {
		return 0, fmt.Errorf("%w %q: negative", ErrSyntax, s)
	}
	var yuan int64
	digits, group, commas := 0, 0, false
	k := 0
	for ; k < len(t) && t[k] != '.'; k++ {
		c := t[k]
		switch {
		case c >= '0' && c <= '9':
			yuan = yuan*10 + int64(c-'0')
			if yuan > maxYuan {
				return 0, fmt.Errorf("%w %q: too large", ErrSyntax, s)
			}
			digits++
			group++
		case c == ',':
			// The first group has 1-3 digits, every later group exactly 3.
			if digits == 0 || (commas && group != 3) || (!commas && group > 3) {
				return 0, fmt.Errorf("%w %q: misplaced thousands separator", ErrSyntax, s)
			}
			commas, group = true, 0
		default:
			return 0, fmt.Errorf("%w %q: not an amount in yuan", ErrSyntax, s)
		}
	}
	if digits == 0 || (commas && group != 3) {
		return 0, fmt.Errorf("%w %q: not an amount in yuan", ErrSyntax, s)
	}
	fen := yuan * 100
	if k < len(t) { // t[k] == '.'
		frac := t[k+1:]
		switch {
		case len(frac) == 0:
			return 0, fmt.Errorf("%w %q: decimal point without decimals", ErrSyntax, s)
		case len(frac) > 2:
			return 0, fmt.Errorf("%w %q: more than two decimals", ErrSyntax, s)
		}
		scale := int64(10)
		for _, c := range []byte(frac) {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%w %q: not an amount in yuan", ErrSyntax, s)
			}
			fen += int64(c-'0') * scale
			scale /= 10
		}
	}
	return fen, nil
}

// FormatYuan writes fen as yuan with exactly two decimals ("1234.56",
// "-0.05"), with no thousands separators.
func FormatYuan(fen int64) string {
	neg := fen < 0
	u := uint64(fen)
	if neg {
		u = uint64(-fen)
	}
	s := fmt.Sprintf("%d.%02d", u/100, u%100)
	if neg {
		return "-" + s
	}
	return s
}
