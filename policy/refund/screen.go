package refund

import (
	"fmt"
	"slices"
	"strings"

	"wengang/policy/civil"
)

// Screen decides every unit of ds at as-of date asOf and returns the
// results sorted by USCC. Rows of the other files whose USCC is not a unit
// of ds are ignored (the reader reports them). It fails only when a USCC
// appears twice among the units, which the reader refuses as bad input.
func Screen(ds *Dataset, p Params, asOf civil.Date) ([]Result, error) {
	index := make(map[string]int32, len(ds.Units))
	for i := range ds.Units {
		if _, dup := index[ds.Units[i].USCC]; dup {
			return nil, fmt.Errorf("refund: unit %s appears twice", ds.Units[i].USCC)
		}
		index[ds.Units[i].USCC] = int32(i)
	}
	contribs := groupBy(ds.Contributions, index, func(c *Contribution) string { return c.USCC })
	accounts := groupBy(ds.Accounts, index, func(a *Account) string { return a.USCC })
	lists := groupBy(ds.Exclusions, index, func(e *Exclusion) string { return e.USCC })

	s := &Screener{Params: p, AsOf: asOf}
	results := make([]Result, len(ds.Units))
	var in Input
	for i := range ds.Units {
		in = Input{
			Unit:          ds.Units[i],
			Contributions: contribs.of(i),
			Accounts:      accounts.of(i),
			Exclusions:    lists.of(i),
		}
		results[i] = s.Decide(&in)
	}
	slices.SortFunc(results, func(a, b Result) int { return strings.Compare(a.USCC, b.USCC) })
	return results, nil
}

// grouped holds rows reordered so that each unit's rows are contiguous and
// keep their file order: rows[start[i]:start[i+1]] belong to unit i.
type grouped[T any] struct {
	rows  []T
	start []int32
}

func (g grouped[T]) of(i int) []T { return g.rows[g.start[i]:g.start[i+1]:g.start[i+1]] }

// groupBy is a counting sort of rows by their unit's index: two passes,
// no per-unit allocation.
func groupBy[T any](rows []T, index map[string]int32, key func(*T) string) grouped[T] {
	owner := make([]int32, len(rows))
	start := make([]int32, len(index)+2)
	n := 0
	// Source files list a unit's rows together: remember the last key
	// and skip the map for runs of the same unit.
	lastKey, lastU, lastOK := "", int32(0), false
	for i := range rows {
		k := key(&rows[i])
		if k != lastKey || i == 0 {
			lastU, lastOK = index[k]
			lastKey = k
		}
		u, ok := lastU, lastOK
		if !ok {
			owner[i] = -1
			continue
		}
		owner[i] = u
		start[u+2]++
		n++
	}
	for i := 2; i < len(start); i++ {
		start[i] += start[i-1]
	}
	out := make([]T, n)
	for i := range rows {
		if u := owner[i]; u >= 0 {
			out[start[u+1]] = rows[i]
			start[u+1]++
		}
	}
	return grouped[T]{rows: out, start: start[:len(index)+1]}
}
