package store_test

import (
	"context"
	"errors"
	"testing"

	"wengang/internal/fault"
	"wengang/internal/loadtest"
	"wengang/internal/pgtest"
	"wengang/policy/civil"
	"wengang/server/store"
)

func TestPublicRounds(t *testing.T) {
	db := pgtest.NewDB(t, store.Migrations)
	st := store.New(db)
	ctx := context.Background()
	es := loadtest.Entries(30, []string{"371521", "371502"})
	es[3].Removed = true
	es[4].State = "objected"
	for _, r := range []loadtest.Round{
		{ID: "R1", Start: 20220420, End: 20220426, State: "released"},
		{ID: "R2", Start: 20220509, End: 20220513},
		{ID: "R3", Start: 20220501, End: 20220506, State: "draft"},
		{ID: "R4", Start: 20220601, End: 20220607},
	} {
		var entries []loadtest.Entry
		switch r.ID {
		case "R2":
			entries = es
		default:
			e := loadtest.Entries(1, []string{"371522"})[0]
			e.USCC = loadtest.USCC("371522", 100+len(r.ID)*10+int(r.ID[1]))
			entries = []loadtest.Entry{e}
		}
		if err := loadtest.Seed(ctx, db, r, entries); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		today civil.Date
		want  []string
	}{
		{20220419, nil},
		{20220420, []string{"R1"}},
		{20220510, []string{"R2", "R1"}},
		{20220601, []string{"R4", "R2", "R1"}},
	} {
		rs, err := st.PublicRounds(ctx, tc.today)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.ID)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || len(got) == 3 && got[1] != "R2" {
			t.Errorf("on %s: %v, want %v", tc.today, got, tc.want)
		}
	}
	r, err := st.PublicRound(ctx, "R2", 20220510)
	if err != nil {
		t.Fatal(err)
	}
	var fen int64
	for i, e := range es {
		if i != 3 {
			fen += e.AmountFen
		}
	}
	if r.Listed != (store.Tally{Count: 29, AmountFen: fen}) || len(r.Counties) != 2 || r.Counties[0] != "371502" || !r.InPublicity(20220513) || r.InPublicity(20220514) {
		t.Errorf("round R2: %+v", r)
	}
	for _, id := range []string{"R3", "R4", "nope"} {
		if _, err := st.PublicRound(ctx, id, 20220510); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("round %s: %v, want not found", id, err)
		}
	}
	all, err := st.PublicEntries(ctx, "R2")
	if err != nil || len(all) != 29 {
		t.Fatalf("entries: %d, %v", len(all), err)
	}
	for _, tc := range []struct {
		f       store.PublicityFilter
		n       int
		matched int64
	}{
		{store.PublicityFilter{RoundID: "R2", Limit: 10}, 10, 29},
		{store.PublicityFilter{RoundID: "R2", Offset: 20, Limit: 10}, 9, 29},
		{store.PublicityFilter{RoundID: "R2", County: "371502", Limit: 50}, 14, 14},
		{store.PublicityFilter{RoundID: "R2", Query: es[3].USCC, Limit: 50}, 0, 0},
		{store.PublicityFilter{RoundID: "R2", Query: es[4].USCC, Limit: 50}, 1, 1},
		{store.PublicityFilter{RoundID: "R2", Query: "第7分公司", Limit: 50}, 1, 1},
	} {
		got, matched, err := st.ListPublicity(ctx, tc.f)
		if err != nil || len(got) != tc.n || matched != tc.matched {
			t.Errorf("%+v: %d entries, %d matched, %v; want %d, %d", tc.f, len(got), matched, err, tc.n, tc.matched)
		}
		for _, e := range got {
			if !store.MatchEntry(e, tc.f.Query) {
				t.Errorf("%+v: %s does not match", tc.f, e.USCC)
			}
		}
		if tc.f.Query == "" && tc.f.County == "" {
			for i, e := range got {
				if all[tc.f.Offset+i] != e {
					t.Errorf("%+v: entry %d is %s, want %s (PublicEntries' order)", tc.f, i, e.USCC, all[tc.f.Offset+i].USCC)
				}
			}
		}
	}
}
