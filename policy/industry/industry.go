// Package industry reads GB/T 4754-2017 industry classes (国民经济行业分类)
// and says which are tertiary (第三产业) under the 2018 rules on the three
// sectors (三次产业划分规定).
package industry

import (
	"errors"
	"fmt"
)

// ErrSyntax is wrapped by every parse error of this package.
var ErrSyntax = errors.New("invalid industry code")

// sections[d] is the section letter of division d (01-97); 0 where no
// division of that number exists.
var sections = func() (s [100]byte) {
	for _, r := range []struct {
		letter   byte
		from, to int
	}{
		{'A', 1, 5}, {'B', 6, 12}, {'C', 13, 43}, {'D', 44, 46}, {'E', 47, 50},
		{'F', 51, 52}, {'G', 53, 60}, {'H', 61, 62}, {'I', 63, 65}, {'J', 66, 69},
		{'K', 70, 70}, {'L', 71, 72}, {'M', 73, 75}, {'N', 76, 79}, {'O', 80, 82},
		{'P', 83, 83}, {'Q', 84, 85}, {'R', 86, 90}, {'S', 91, 96}, {'T', 97, 97},
	} {
		for d := r.from; d <= r.to; d++ {
			s[d] = r.letter
		}
	}
	return s
}()

// Class is a four-digit industry class such as "5211".
type Class string

// Parse accepts a four-digit class ("5211"), optionally led by its section
// letter ("F5211"), and returns the four digits. The division must exist
// and a letter, when given, must be its section's.
func Parse(s string) (Class, error) {
	code := s
	var letter byte
	if len(code) == 5 {
		letter = code[0]
		if 'a' <= letter && letter <= 'z' {
			letter -= 'a' - 'A'
		}
		if letter < 'A' || letter > 'Z' {
			return "", fmt.Errorf("%w %q: not a four-digit class, optionally led by its section letter", ErrSyntax, s)
		}
		code = code[1:]
	}
	if len(code) != 4 {
		return "", fmt.Errorf("%w %q: not a four-digit class, optionally led by its section letter", ErrSyntax, s)
	}
	for i := 0; i < 4; i++ {
		if code[i] < '0' || code[i] > '9' {
			return "", fmt.Errorf("%w %q: not a four-digit class, optionally led by its section letter", ErrSyntax, s)
		}
	}
	div := int(code[0]-'0')*10 + int(code[1]-'0')
	sec := sections[div]
	if sec == 0 {
		return "", fmt.Errorf("%w %q: division %02d does not exist", ErrSyntax, s, div)
	}
	if letter != 0 && letter != sec {
		return "", fmt.Errorf("%w %q: division %02d is in section %c, not %c", ErrSyntax, s, div, sec, letter)
	}
	return Class(code), nil
}

// Division returns the two-digit division of c (52 for "5211").
func (c Class) Division() int {
	if len(c) < 2 {
		return 0
	}
	return int(c[0]-'0')*10 + int(c[1]-'0')
}

// Section returns the section letter of c.
func (c Class) Section() byte { return sections[c.Division()] }

// Tertiary reports whether c belongs to the tertiary sector: division 05
// (agricultural services), 11 (mining support), 43 (repair of machinery) and
// every division from 51 to 97.
func (c Class) Tertiary() bool {
	d := c.Division()
	return d == 5 || d == 11 || d == 43 || (d >= 51 && d <= 97)
}
