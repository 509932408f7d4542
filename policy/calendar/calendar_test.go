package calendar

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"wengang/policy/civil"
)

func embeddedCalendar(t *testing.T) *Calendar {
	t.Helper()
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNthWorkday(t *testing.T) {
	t.Parallel()
	c := embeddedCalendar(t)
	tests := []struct {
		from string
		n    int
		want string
	}{
		{"2022-04-25", 5, "2022-04-29"},
		{"2022-04-28", 5, "2022-05-07"}, // a Saturday worked
		{"2022-05-30", 5, "2022-06-06"}, // 端午 06-03..06-05
		{"2022-06-24", 5, "2022-06-30"}, // the last publicity that ends by 06-30
		{"2022-04-30", 1, "2022-05-05"}, // starts in a holiday: day 1 is the next working day
		{"2022-01-29", 1, "2022-01-29"}, // an adjusted working Saturday
		{"2022-12-28", 5, "2023-01-04"}, // across the year: 2023-01-02 is a holiday
		{"2023-09-28", 2, "2023-10-07"}, // 中秋国庆 09-29..10-06, then a Saturday worked
		{"2024-02-09", 2, "2024-02-18"}, // 春节 02-10..02-17; 02-18 is a Sunday worked
		{"2025-01-24", 2, "2025-01-26"}, // 2025-01-26 is a Sunday worked
		{"2026-02-13", 2, "2026-02-14"}, // 2026-02-14 is a Saturday worked
		{"2026-09-30", 2, "2026-10-08"}, // 国庆 10-01..10-07
		{"2022-04-25", 1, "2022-04-25"},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			from, _ := civil.ParseDate(tt.from)
			got, err := c.NthWorkday(from, tt.n)
			if err != nil || got.String() != tt.want {
				t.Fatalf("NthWorkday(%s, %d) = %v, %v; want %s", tt.from, tt.n, got, err, tt.want)
			}
		})
	}
}

// The State Council's notices make these many working days a year
// (weekdays, less holidays on weekdays, plus adjusted working days;
// counted by hand from the notices).
func TestWorkdaysPerYear(t *testing.T) {
	t.Parallel()
	c := embeddedCalendar(t)
	want := map[int]int{2022: 249, 2023: 249, 2024: 251, 2025: 248, 2026: 248}
	for y, n := range want {
		got := 0
		for d := civil.MustDate(y, 1, 1); d.Year() == y; d = d.AddDays(1) {
			ok, err := c.IsWorkday(d)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				got++
			}
		}
		if got != n {
			t.Errorf("%d has %d working days, want %d", y, got, n)
		}
	}
}

func TestUnloadedYear(t *testing.T) {
	t.Parallel()
	c := embeddedCalendar(t)
	if _, err := c.IsWorkday(civil.MustDate(2021, 12, 31)); !errors.Is(err, ErrNoCalendar) {
		t.Errorf("2021: err = %v, want ErrNoCalendar", err)
	}
	// 2026-12-28 + 5 working days runs into 2027, which is not loaded.
	if _, err := c.NthWorkday(civil.MustDate(2026, 12, 28), 5); !errors.Is(err, ErrNoCalendar) {
		t.Errorf("into 2027: err = %v, want ErrNoCalendar", err)
	}
	if _, err := c.NthWorkday(civil.MustDate(2022, 1, 4), 0); err == nil {
		t.Error("count 0 accepted")
	}
	if got := c.Years(); len(got) != 5 || got[0] != 2022 || got[4] != 2026 {
		t.Errorf("Years() = %v", got)
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"weekday workday": "workday 2022-01-04 x\n",
		"other year":      "holiday 2023-01-01 x\n",
		"twice":           "holiday 2022-01-03 x\nworkday 2022-01-03 y\n",
		"bad date":        "holiday 2022-02-30 x\n",
		"no name":         "holiday 2022-01-03\n",
		"unknown":         "vacation 2022-01-03 x\n",
		"reversed":        "holiday 2022-01-05 2022-01-03 x\n",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(fstest.MapFS{"2022.txt": {Data: []byte(text)}})
			if err == nil || !strings.Contains(err.Error(), "2022.txt:") {
				t.Fatalf("Load accepted %q (err %v)", text, err)
			}
		})
	}
	if _, err := Load(fstest.MapFS{"next.txt": {Data: []byte("")}}); err == nil {
		t.Error("a file not named for a year was accepted")
	}
}
