package gen

import (
	"math/rand/v2"

	"wengang/policy/civil"
)

// month returns the Month y-m; m may run past 12 or below 1.
func month(y, m int) civil.Month {
	i := y*12 + m - 1
	return civil.Month(i/12*100 + i%12 + 1)
}

// addMonths returns m moved by k months.
func addMonths(m civil.Month, k int) civil.Month { return month(m.Year(), m.Month()+k) }

// monthsBetween returns the number of months from a to b (b − a).
func monthsBetween(a, b civil.Month) int {
	return (b.Year()*12 + b.Month()) - (a.Year()*12 + a.Month())
}

// day returns the date y-m-d; d must exist.
func day(m civil.Month, d int) civil.Date {
	return civil.Date(int32(m)*100 + int32(d))
}

// lastDay returns the last day of m.
func lastDay(m civil.Month) civil.Date {
	return day(addMonths(m, 1), 1).AddDays(-1)
}

// dayNumber returns the number of days from 1970-01-01 to d (Howard
// Hinnant's days_from_civil), so that dates subtract in integers.
func dayNumber(d civil.Date) int {
	y, m, dd := d.Year(), d.Month(), d.Day()
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + dd - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// daysBetween returns b − a in days.
func daysBetween(a, b civil.Date) int { return dayNumber(b) - dayNumber(a) }

// randomDate returns a date drawn uniformly from [from, to]; to ≥ from.
func randomDate(r *rand.Rand, from, to civil.Date) civil.Date {
	return from.AddDays(r.IntN(daysBetween(from, to) + 1))
}

// randomMonth returns a month drawn uniformly from [from, to]; to ≥ from.
func randomMonth(r *rand.Rand, from, to civil.Month) civil.Month {
	return addMonths(from, r.IntN(monthsBetween(from, to)+1))
}
