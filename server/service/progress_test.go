package service

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	"wengang/internal/loadtest"
	"wengang/policy/access"
	"wengang/policy/civil"
	wengangv1 "wengang/proto/wengang/v1"
)

// poSeedProgress builds three counties' progress:
//
//   - 371502: 5 items (paid on 05-20 and 05-25, released, returned,
//     rejected); reported 4 eligible.
//   - 371521: 2 items in publicity, one objected; reported 2 eligible.
//   - 371522: 1 item paid on 06-10; reported 1 eligible.
func poSeedProgress(t *testing.T, c *poCity) {
	t.Helper()
	ctx := context.Background()
	es := []loadtest.Entry{}
	add := func(county string, n int, states ...string) {
		for i, s := range states {
			e := loadtest.Entries(1, []string{county})[0]
			e.USCC = loadtest.USCC(county, n+i)
			e.AmountFen = int64(100000 * (i + 1))
			e.State = s
			es = append(es, e)
		}
	}
	add("371502", 1, "paid", "paid", "released", "returned", "rejected")
	add("371521", 1, "in_publicity", "objected")
	add("371522", 1, "paid")
	if err := loadtest.Seed(ctx, c.db, loadtest.Round{ID: "R2022-0001", Start: 20220509, End: 20220513, State: "released"}, es); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := c.db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	at := time.Date(2022, 5, 16, 0, 0, 0, 0, time.UTC)
	for _, county := range []string{"371502", "371522"} {
		exec(`INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at) VALUES ($1, $2, 'R2022-0001', 1, 1, $3)`,
			county, "F-"+county, at)
	}
	pay := func(county string, n int, paidOn string) {
		u := loadtest.USCC(county, n)
		exec(`INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year, payee_name, account_no,
				bank, bank_code, account_kind, amount_fen, state, funding_request_id, released_at, paid_on)
			VALUES ($1, $2, $2, 'R2022-0001', 'B-R2022-0001-' || $1, $3, 2022, 'x', '1', 'b', 'c', 'corporate', 100, 'paid', 'F-' || $1, $4, $5::date)`,
			county, "P-"+u, u, at, paidOn)
	}
	pay("371502", 1, "2022-05-25")
	pay("371502", 2, "2022-05-20")
	pay("371522", 1, "2022-06-10")
	report := func(county, id string, rev, units, eligible int64, reportedAt time.Time) {
		exec(`INSERT INTO screening_report (county, screening_id, revision, dataset_hash, as_of, policy_id, screened_units,
				screened_eligible_count, screened_eligible_fen, screened_hold_count, screened_hold_fen, screened_ineligible_count,
				reviewed_units, reviewed_eligible_count, reviewed_eligible_fen, reviewed_hold_count, reviewed_hold_fen, reviewed_ineligible_count,
				reported_by, reported_at)
			VALUES ($1, $2, $3, 'h', '2022-03-31', 'liaocheng-2022', $4::bigint, $5::bigint, $5::bigint * 100, 1, 100, 0, $4::bigint, $5::bigint, $5::bigint * 1000, 1, 500, 0, 'node', $6)`,
			county, id, rev, units, eligible, reportedAt)
	}
	report("371502", "S-old", 1, 10, 9, at.Add(-time.Hour))
	report("371502", "S-new", 2, 40, 4, at)
	report("371521", "S-1", 1, 30, 2, at)
	report("371522", "S-1", 1, 20, 1, at)
}

func TestGetProgress(t *testing.T) {
	const (
		open   = wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN
		met    = wengangv1.DeadlineStatus_DEADLINE_STATUS_MET
		missed = wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED
	)
	for _, tc := range []struct {
		today civil.Date
		// county and final deadline of 371502, 371521, 371522, total
		county, final [4]wengangv1.DeadlineStatus
	}{
		// 371522's only payment, on 06-10, is after county_pay_by: missed
		// whatever the date; it paid everyone it found eligible by
		// all_paid_by: met.
		{20220525, [4]wengangv1.DeadlineStatus{met, open, missed, missed}, [4]wengangv1.DeadlineStatus{open, open, met, open}},
		{20220601, [4]wengangv1.DeadlineStatus{met, missed, missed, missed}, [4]wengangv1.DeadlineStatus{open, open, met, open}},
		{20220615, [4]wengangv1.DeadlineStatus{met, missed, missed, missed}, [4]wengangv1.DeadlineStatus{open, open, met, open}},
		{20220701, [4]wengangv1.DeadlineStatus{met, missed, missed, missed}, [4]wengangv1.DeadlineStatus{missed, missed, met, missed}},
	} {
		t.Run(tc.today.String(), func(t *testing.T) {
			c := poStart(t, tc.today)
			poSeedProgress(t, c)
			resp, err := c.progress.GetProgress(context.Background(), connect.NewRequest(&wengangv1.GetProgressRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			m := resp.Msg
			if m.GetAsOf().GetDay() != int32(tc.today.Day()) || m.GetCountyPayBy().GetMonth() != 5 || m.GetCountyPayBy().GetDay() != 31 ||
				m.GetAllPaidBy().GetMonth() != 6 || m.GetAllPaidBy().GetDay() != 30 {
				t.Errorf("dates: %v %v %v", m.GetAsOf(), m.GetCountyPayBy(), m.GetAllPaidBy())
			}
			if len(m.GetCounties()) != 11 {
				t.Fatalf("%d counties, want the 11 of Liaocheng", len(m.GetCounties()))
			}
			by := map[string]*wengangv1.CountyProgress{}
			for i, l := range m.GetCounties() {
				if i > 0 && m.GetCounties()[i-1].GetCounty() >= l.GetCounty() {
					t.Errorf("counties out of order at %s", l.GetCounty())
				}
				by[l.GetCounty()] = l
			}
			lines := []*wengangv1.CountyProgress{by["371502"], by["371521"], by["371522"], m.GetTotal()}
			for i, l := range lines {
				if l.GetCountyDeadline() != tc.county[i] || l.GetFinalDeadline() != tc.final[i] {
					t.Errorf("%s: county deadline %v final %v, want %v %v", l.GetCounty(), l.GetCountyDeadline(), l.GetFinalDeadline(), tc.county[i], tc.final[i])
				}
			}
			if l := by["371526"]; l.GetCountyName() != "高唐县" || l.GetReceived().GetCount() != 0 {
				t.Errorf("a county with nothing: %v", l)
			}
		})
	}
	t.Run("figures", func(t *testing.T) {
		c := poStart(t, 20220525)
		poSeedProgress(t, c)
		resp, err := c.progress.GetProgress(context.Background(), connect.NewRequest(&wengangv1.GetProgressRequest{Counties: []string{"371502", "371521"}}))
		if err != nil {
			t.Fatal(err)
		}
		tally := func(x *wengangv1.Tally) [2]int64 { return [2]int64{x.GetCount(), x.GetAmountFen()} }
		a, b, tot := resp.Msg.GetCounties()[0], resp.Msg.GetCounties()[1], resp.Msg.GetTotal()
		for _, tc := range []struct {
			name      string
			got, want [2]int64
		}{
			{"a screened", [2]int64{a.GetScreenedCount(), 0}, [2]int64{40, 0}},
			{"a eligible (latest report)", tally(a.GetEligible()), [2]int64{4, 4000}},
			{"a hold", tally(a.GetHold()), [2]int64{1, 500}},
			{"a received", tally(a.GetReceived()), [2]int64{4, 1000000}},
			{"a rejected", tally(a.GetRejected()), [2]int64{1, 500000}},
			{"a released", tally(a.GetReleased()), [2]int64{4, 1000000}},
			{"a paid", tally(a.GetPaid()), [2]int64{2, 300000}},
			{"a outstanding", tally(a.GetOutstanding()), [2]int64{1, 300000}},
			{"a returned", tally(a.GetReturned()), [2]int64{1, 400000}},
			{"a first paid", [2]int64{int64(a.GetFirstPaidOn().GetMonth()), int64(a.GetFirstPaidOn().GetDay())}, [2]int64{5, 20}},
			{"b in publicity, objected included", tally(b.GetInPublicity()), [2]int64{2, 300000}},
			{"b received", tally(b.GetReceived()), [2]int64{2, 300000}},
			{"total received", tally(tot.GetReceived()), [2]int64{6, 1300000}},
			{"total screened", [2]int64{tot.GetScreenedCount(), 0}, [2]int64{70, 0}},
		} {
			if tc.got != tc.want {
				t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
			}
		}
		if len(resp.Msg.GetCounties()) != 2 || a.GetScreeningId() != "S-new" || tot.GetCounty() != "" {
			t.Errorf("lines: %v", resp.Msg)
		}
	})
	t.Run("a county's person sees its own county only", func(t *testing.T) {
		c := poStart(t, 20220525)
		poSeedProgress(t, c)
		svc := &ProgressService{c.deps}
		ctx := access.WithPrincipal(context.Background(), access.Principal{Kind: access.KindPerson, Subject: "t", Role: "county_admin", Domain: "371521"})
		resp, err := svc.GetProgress(ctx, connect.NewRequest(&wengangv1.GetProgressRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if l := resp.Msg.GetCounties(); len(l) != 1 || l[0].GetCounty() != "371521" || resp.Msg.GetTotal().GetReceived().GetCount() != 2 {
			t.Errorf("counties %v", l)
		}
		if _, err := svc.GetProgress(ctx, connect.NewRequest(&wengangv1.GetProgressRequest{Counties: []string{"371502"}})); err == nil {
			t.Error("a county read another's progress")
		}
	})
}
