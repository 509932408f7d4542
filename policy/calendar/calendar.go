// Package calendar knows which civil dates are working days (工作日) in
// mainland China and counts working days for publicity (公示).
//
// A date is a working day when it is not a public holiday and is either a
// weekday or an adjusted working weekend day (调休上班) from the State
// Council's yearly notice. The notices are data, one file per year; a date
// in a year that is not loaded is an error, never a guess.
package calendar

import (
	"bufio"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"wengang/policy/civil"
)

//go:embed data/*.txt
var embedded embed.FS

// ErrNoCalendar is wrapped when a date falls in a year with no calendar.
var ErrNoCalendar = errors.New("no working-day calendar loaded for that year")

type dayKind uint8

const (
	holiday dayKind = iota + 1
	adjustedWorkday
)

type entry struct {
	kind dayKind
	name string
}

// Calendar is a set of loaded years. It is immutable after loading and
// safe for concurrent use.
type Calendar struct {
	days  map[civil.Date]entry
	years map[int]bool
}

// Embedded returns the calendar of the notices shipped with Wengang
// (2022 to 2026).
func Embedded() (*Calendar, error) {
	sub, err := fs.Sub(embedded, "data")
	if err != nil {
		return nil, err
	}
	return Load(sub)
}

// Load reads every YYYY.txt file at the top of fsys. Each line is
// "holiday FROM [TO] NAME" or "workday DATE NAME"; '#' starts a comment.
// Every date must lie in the file's year, an adjusted working day must fall
// on a weekend, and no date may be both.
func Load(fsys fs.FS) (*Calendar, error) {
	names, err := fs.Glob(fsys, "*.txt")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	c := &Calendar{days: make(map[civil.Date]entry), years: make(map[int]bool)}
	var errs []error
	for _, name := range names {
		y, err := strconv.Atoi(strings.TrimSuffix(path.Base(name), ".txt"))
		if err != nil || y < civil.MinYear || y > civil.MaxYear {
			errs = append(errs, fmt.Errorf("%s: file name is not a year", name))
			continue
		}
		if err := c.loadYear(fsys, name, y); err != nil {
			errs = append(errs, err)
			continue
		}
		c.years[y] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Calendar) loadYear(fsys fs.FS, name string, year int) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, args...)))
		}
		var kind dayKind
		switch fields[0] {
		case "holiday":
			kind = holiday
		case "workday":
			kind = adjustedWorkday
		default:
			bad("unknown entry %q (want holiday or workday)", fields[0])
			continue
		}
		if len(fields) < 3 {
			bad("want %s DATE [DATE] NAME", fields[0])
			continue
		}
		from, err := civil.ParseDate(fields[1])
		if err != nil {
			bad("%v", err)
			continue
		}
		to, rest := from, fields[2:]
		if d, err := civil.ParseDate(fields[2]); err == nil {
			if kind == adjustedWorkday {
				bad("a workday entry names one date")
				continue
			}
			to, rest = d, fields[3:]
		}
		if len(rest) == 0 {
			bad("missing name")
			continue
		}
		if from.Year() != year || to.Year() != year || to < from {
			bad("dates %s..%s are not a range within %d", from, to, year)
			continue
		}
		label := strings.Join(rest, " ")
		for d := from; d <= to; d = d.AddDays(1) {
			if prev, dup := c.days[d]; dup {
				bad("%s is already listed as %s", d, prev.name)
				continue
			}
			if kind == adjustedWorkday {
				if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
					bad("adjusted working day %s is a %s, not a weekend day", d, wd)
					continue
				}
			}
			c.days[d] = entry{kind: kind, name: label}
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return errors.Join(errs...)
}

// Years returns the loaded years in order.
func (c *Calendar) Years() []int {
	ys := make([]int, 0, len(c.years))
	for y := range c.years {
		ys = append(ys, y)
	}
	sort.Ints(ys)
	return ys
}

// IsWorkday reports whether d is a working day. It fails with
// ErrNoCalendar when d's year is not loaded.
func (c *Calendar) IsWorkday(d civil.Date) (bool, error) {
	if !c.years[d.Year()] {
		return false, fmt.Errorf("%w: %s (loaded: %v)", ErrNoCalendar, d, c.Years())
	}
	if e, ok := c.days[d]; ok {
		return e.kind == adjustedWorkday, nil
	}
	wd := d.Weekday()
	return wd != time.Saturday && wd != time.Sunday, nil
}

// NthWorkday returns the n-th working day counted from start: day 1 is
// start itself when it is a working day, else the next working day. A
// publicity of n working days starting on start ends at the end of
// NthWorkday(start, n). n must be at least 1.
func (c *Calendar) NthWorkday(start civil.Date, n int) (civil.Date, error) {
	if n < 1 {
		return 0, fmt.Errorf("calendar: count of working days must be at least 1, got %d", n)
	}
	d := start
	for {
		ok, err := c.IsWorkday(d)
		if err != nil {
			return 0, err
		}
		if ok {
			n--
			if n == 0 {
				return d, nil
			}
		}
		d = d.AddDays(1)
	}
}
