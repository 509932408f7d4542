// Package uscc normalizes and checks the Unified Social Credit Code
// (统一社会信用代码) of GB 32100-2015.
//
// A code is 18 characters from the alphabet 0-9 and A-Y without I, O, S, V
// and Z; characters 3 to 8 are the digits of the region; the 18th is a check
// character over the first 17. A code that is not of that shape is bad input
// ([ErrBad]); a code of the right shape whose check character is wrong is
// held for a person to verify ([Hold]), never dropped: real registers carry
// such codes.
package uscc

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Alphabet is the code's character set in value order: the character at
// index v has value v.
const Alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"

// Length is the number of characters of a code.
const Length = 18

// weights[i] is 3^i mod 31, the weight of the (i+1)-th character.
var weights = [Length - 1]int{1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28}

// values maps an ASCII byte to its value plus one; zero means not in the alphabet.
var values = func() (v [256]uint8) {
	for i := 0; i < len(Alphabet); i++ {
		v[Alphabet[i]] = uint8(i + 1)
	}
	return v
}()

// ErrBad is wrapped by every error that says a code is not of the GB 32100 shape.
var ErrBad = errors.New("not a unified social credit code")

// Status is the outcome of checking a well-formed code.
type Status uint8

const (
	// Valid means the check character matches.
	Valid Status = iota + 1
	// Hold means the code has the right shape but a wrong check character.
	Hold
)

// String returns "valid" or "hold".
func (s Status) String() string {
	switch s {
	case Valid:
		return "valid"
	case Hold:
		return "hold"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Normalize trims spaces, folds full-width ASCII forms (including the
// ideographic space) to half-width and upper-cases. It does not check.
func Normalize(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf || ('a' <= c && c <= 'z') {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.TrimSpace(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\u3000':
			r = ' '
		case r >= '\uFF01' && r <= '\uFF5E':
			r = r - '\uFF01' + '!'
		}
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// CheckChar returns the check character for the first 17 characters of
// code, which must already be of the alphabet.
func CheckChar(first17 string) (byte, error) {
	if len(first17) != Length-1 {
		return 0, fmt.Errorf("%w: need 17 characters, have %d", ErrBad, utf8.RuneCountInString(first17))
	}
	sum := 0
	for i := 0; i < Length-1; i++ {
		v := values[first17[i]]
		if v == 0 {
			return 0, fmt.Errorf("%w: character %d %q is not allowed", ErrBad, i+1, first17[i])
		}
		sum += int(v-1) * weights[i]
	}
	return Alphabet[(31-sum%31)%31], nil
}

// Check reports whether an already normalized code is valid or held. It
// returns an error wrapping [ErrBad] when the code is not 18 characters of
// the alphabet with digits in positions 3 to 8.
func Check(code string) (Status, error) {
	if n := utf8.RuneCountInString(code); n != Length || len(code) != Length {
		if code == "" {
			return 0, fmt.Errorf("%w: empty", ErrBad)
		}
		return 0, fmt.Errorf("%w: %d characters, need %d", ErrBad, n, Length)
	}
	for i := 0; i < Length; i++ {
		c := code[i]
		if values[c] == 0 {
			return 0, fmt.Errorf("%w: character %d %q is not allowed", ErrBad, i+1, c)
		}
		if i >= 2 && i < 8 && (c < '0' || c > '9') {
			return 0, fmt.Errorf("%w: character %d %q is not a digit of the region code", ErrBad, i+1, c)
		}
	}
	want, err := CheckChar(code[:Length-1])
	if err != nil {
		return 0, err
	}
	if code[Length-1] != want {
		return Hold, nil
	}
	return Valid, nil
}

// Parse normalizes s and checks it, returning the normalized code.
func Parse(s string) (string, Status, error) {
	code := Normalize(s)
	st, err := Check(code)
	return code, st, err
}

// OrgCodeValid reports whether characters 9 to 17 of a well-formed code
// carry a GB 11714 organization code whose own check character is right.
// A mismatch is a warning only: the credit code's check character governs.
func OrgCodeValid(code string) bool {
	if len(code) != Length {
		return false
	}
	org := code[8:17]
	w := [8]int{3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 8; i++ {
		c := org[i]
		var v int
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = int(c-'A') + 10
		default:
			return false
		}
		sum += v * w[i]
	}
	c := 11 - sum%11
	var want byte
	switch c {
	case 10:
		want = 'X'
	case 11:
		want = '0'
	default:
		want = byte('0' + c)
	}
	return org[8] == want
}
