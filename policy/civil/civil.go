// Package civil holds the calendar dates and months of business: a
// publicity start, a payment date, a contribution's period (费款所属期). They
// are civil dates in Asia/Shanghai with no time of day and no zone, kept as
// small integers so that millions of them compare and sort cheaply.
package civil

import (
	"errors"
	"fmt"
	"time"
)

// Date is a civil date stored as the integer YYYYMMDD; the zero Date means
// "no date" (an unpaid contribution has no paid-on date). Dates compare
// with < and ==.
type Date int32

// Month is a civil month stored as the integer YYYYMM; the zero Month means
// "no month".
type Month int32

// ErrSyntax is wrapped by every parse error of this package.
var ErrSyntax = errors.New("syntax")

// Shanghai is the zone of the business calendar.
var Shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		// The zone database may be missing on a minimal machine; China has
		// kept UTC+8 without daylight saving since 1991.
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// MinYear and MaxYear bound the years a Date or Month may carry.
const (
	MinYear = 1900
	MaxYear = 2999
)

// NewDate returns the Date y-m-d, or an error when it does not exist.
func NewDate(y, m, d int) (Date, error) {
	if y < MinYear || y > MaxYear {
		return 0, fmt.Errorf("%w: year %d out of range %d-%d", ErrSyntax, y, MinYear, MaxYear)
	}
	if m < 1 || m > 12 {
		return 0, fmt.Errorf("%w: month %d out of range", ErrSyntax, m)
	}
	if d < 1 || d > daysIn(y, m) {
		return 0, fmt.Errorf("%w: day %d does not exist in %04d-%02d", ErrSyntax, d, y, m)
	}
	return Date(y*10000 + m*100 + d), nil
}

// MustDate is NewDate for literals known to be right; it panics otherwise.
func MustDate(y, m, d int) Date {
	dt, err := NewDate(y, m, d)
	if err != nil {
		panic(err)
	}
	return dt
}

// DateOf returns the civil date of t in Asia/Shanghai.
func DateOf(t time.Time) Date {
	y, m, d := t.In(Shanghai).Date()
	return Date(y*10000 + int(m)*100 + d)
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(y, m int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ParseDate parses YYYY-MM-DD exactly (four digits, two, two).
func ParseDate(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, fmt.Errorf("%w: date %q is not YYYY-MM-DD", ErrSyntax, s)
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	if !ok1 || !ok2 || !ok3 {
		return 0, fmt.Errorf("%w: date %q is not YYYY-MM-DD", ErrSyntax, s)
	}
	return NewDate(y, m, d)
}

// ParseMonth parses a period written YYYYMM or YYYY-MM.
func ParseMonth(s string) (Month, error) {
	var ys, ms string
	switch {
	case len(s) == 6:
		ys, ms = s[0:4], s[4:6]
	case len(s) == 7 && s[4] == '-':
		ys, ms = s[0:4], s[5:7]
	default:
		return 0, fmt.Errorf("%w: period %q is not YYYYMM or YYYY-MM", ErrSyntax, s)
	}
	y, ok1 := digits(ys)
	m, ok2 := digits(ms)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%w: period %q is not YYYYMM or YYYY-MM", ErrSyntax, s)
	}
	return NewMonth(y, m)
}

// NewMonth returns the Month y-m, or an error when it does not exist.
func NewMonth(y, m int) (Month, error) {
	if y < MinYear || y > MaxYear {
		return 0, fmt.Errorf("%w: year %d out of range %d-%d", ErrSyntax, y, MinYear, MaxYear)
	}
	if m < 1 || m > 12 {
		return 0, fmt.Errorf("%w: month %d out of range", ErrSyntax, m)
	}
	return Month(y*100 + m), nil
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, len(s) > 0
}

// Year returns the year of d.
func (d Date) Year() int { return int(d) / 10000 }

// Month returns the month of d, 1 to 12.
func (d Date) Month() int { return int(d) / 100 % 100 }

// Day returns the day of the month of d.
func (d Date) Day() int { return int(d) % 100 }

// IsZero reports whether d is the zero Date, "no date".
func (d Date) IsZero() bool { return d == 0 }

// String returns d as YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d == 0 {
		return ""
	}
	var b [10]byte
	put4(b[0:4], d.Year())
	b[4] = '-'
	put2(b[5:7], d.Month())
	b[7] = '-'
	put2(b[8:10], d.Day())
	return string(b[:])
}

// Time returns midnight at the start of d in Asia/Shanghai.
func (d Date) Time() time.Time {
	return time.Date(d.Year(), time.Month(d.Month()), d.Day(), 0, 0, 0, 0, Shanghai)
}

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year(), time.Month(d.Month()), d.Day(), 12, 0, 0, 0, time.UTC).Weekday()
}

// AddDays returns d moved by n days.
func (d Date) AddDays(n int) Date {
	t := time.Date(d.Year(), time.Month(d.Month()), d.Day()+n, 12, 0, 0, 0, time.UTC)
	y, m, dd := t.Date()
	return Date(y*10000 + int(m)*100 + dd)
}

// MonthOf returns the month d falls in.
func (d Date) MonthOf() Month { return Month(int(d) / 100) }

// Year returns the year of m.
func (m Month) Year() int { return int(m) / 100 }

// Month returns the month number of m, 1 to 12.
func (m Month) Month() int { return int(m) % 100 }

// String returns m as YYYY-MM, or "" for the zero Month.
func (m Month) String() string {
	if m == 0 {
		return ""
	}
	var b [7]byte
	put4(b[0:4], m.Year())
	b[4] = '-'
	put2(b[5:7], m.Month())
	return string(b[:])
}

// Compact returns m as YYYYMM.
func (m Month) Compact() string {
	if m == 0 {
		return ""
	}
	var b [6]byte
	put4(b[0:4], m.Year())
	put2(b[4:6], m.Month())
	return string(b[:])
}

func put4(b []byte, n int) {
	b[0] = byte('0' + n/1000%10)
	b[1] = byte('0' + n/100%10)
	b[2] = byte('0' + n/10%10)
	b[3] = byte('0' + n%10)
}

func put2(b []byte, n int) {
	b[0] = byte('0' + n/10%10)
	b[1] = byte('0' + n%10)
}
