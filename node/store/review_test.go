package store_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/refund"
)

func TestReviewUnit(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	rep := ncSealed(t, s)
	rows := ncResults()
	sc, _, err := s.CreateScreening(ctx, ncNewScreening(rep.ID, "k"), rows, ncScreeningEntry)
	if err != nil {
		t.Fatal(err)
	}
	byUSCC := make(map[string]store.Result)
	for _, r := range rows {
		byUSCC[r.USCC] = r
	}
	want := fullDataset()
	target := byUSCC[want.Units[0].USCC] // eligible
	var seen *store.UnitReview
	exclude := store.ReviewOps{
		Key: "r1", RequestSHA256: sha256.Sum256([]byte("exclude")),
		Guard: func(store.Screening) error { return nil },
		Decide: func(u *store.UnitReview) (store.ReviewChange, error) {
			seen = u
			out := u.Result.Current
			out.Decision, out.RefundFen = refund.Ineligible, 0
			return store.ReviewChange{Current: out, Override: store.OverrideExcluded,
				Review: store.Review{Action: store.ActionExclude, Reason: "理由", Reviewer: "tok-r", ReviewerName: "李", ReviewedAt: time.Now()}}, nil
		},
		Audit: func(rv store.Review, res store.Result) audit.Entry {
			return audit.Entry{Actor: access.System("test"), Action: "exclude", ObjectID: fmt.Sprint(rv.ID)}
		},
	}
	rv, res, replayed, err := s.ReviewUnit(ctx, countyA, sc.ID, target.USCC, exclude)
	if err != nil || replayed {
		t.Fatal(err)
	}
	if rv.DecisionBefore != refund.Eligible || rv.DecisionAfter != refund.Ineligible || rv.RefundBeforeFen != target.Current.RefundFen ||
		rv.ID == 0 || rv.County != countyA || rv.ScreeningID != sc.ID || rv.USCC != target.USCC {
		t.Errorf("review %+v", rv)
	}
	if res.Current.Decision != refund.Ineligible || res.Override != store.OverrideExcluded || !res.Reviewed || res.Screened != target.Screened {
		t.Errorf("result %+v", res)
	}
	// Decide saw the screening, the unit's rows in file order, no facts.
	if seen.Screening.ID != sc.ID || seen.Input.Unit != want.Units[0] || len(seen.Input.Contributions) != 3 ||
		seen.Input.Contributions[2] != want.Contributions[2] || len(seen.Input.Accounts) != 2 || len(seen.Facts) != 0 {
		t.Errorf("decide saw %+v", seen)
	}

	// A replay answers with the review; the same key for another request
	// is a conflict; the guard runs first.
	again, _, replayed, err := s.ReviewUnit(ctx, countyA, sc.ID, target.USCC, exclude)
	if err != nil || !replayed || again.ID != rv.ID {
		t.Errorf("replay: %+v, %v", again, err)
	}
	other := exclude
	other.RequestSHA256 = sha256.Sum256([]byte("other"))
	_, _, _, err = s.ReviewUnit(ctx, countyA, sc.ID, target.USCC, other)
	wantKind(t, err, fault.ErrConflict)
	guarded := exclude
	guarded.Guard = func(store.Screening) error { return fault.New(fault.ErrPermissionDenied, "four eyes") }
	_, _, _, err = s.ReviewUnit(ctx, countyA, sc.ID, target.USCC, guarded)
	wantKind(t, err, fault.ErrPermissionDenied)

	// A fact is recorded and given to later reviews of the unit.
	hold := byUSCC[want.Units[1].USCC]
	resolve := exclude
	resolve.Key, resolve.RequestSHA256 = "r2", sha256.Sum256([]byte("resolve"))
	fact := store.Fact{Kind: store.FactAccount, Account: refund.Account{USCC: hold.USCC, Kind: refund.AccountCorporate, Bank: "农行", AccountNo: "42", AccountName: "户"}}
	resolve.Decide = func(u *store.UnitReview) (store.ReviewChange, error) {
		return store.ReviewChange{Current: u.Result.Current, USCCVerified: true, CorrectedUSCC: "",
			Review: store.Review{Action: store.ActionResolveHold, Reason: "理由", Fact: fact, Reviewer: "tok-r", ReviewedAt: time.Now()}}, nil
	}
	rv2, res2, _, err := s.ReviewUnit(ctx, countyA, sc.ID, hold.USCC, resolve)
	if err != nil || rv2.Fact != fact || !res2.USCCVerified {
		t.Fatalf("resolve: %+v %+v %v", rv2, res2, err)
	}
	third := exclude
	third.Key, third.RequestSHA256 = "r3", sha256.Sum256([]byte("third"))
	third.Decide = func(u *store.UnitReview) (store.ReviewChange, error) {
		if len(u.Facts) != 1 || u.Facts[0] != fact {
			t.Errorf("facts %+v, want %+v", u.Facts, fact)
		}
		return store.ReviewChange{}, fault.New(fault.ErrFailedPrecondition, "refused")
	}
	_, _, _, err = s.ReviewUnit(ctx, countyA, sc.ID, hold.USCC, third)
	wantKind(t, err, fault.ErrFailedPrecondition)

	// A unit in a live batch cannot be reviewed.
	if _, err := pool.Exec(ctx, `INSERT INTO batch (county, id, screening_id, policy_year, content, content_hash, item_count, total_fen, sealed_by, sealed_at)
		VALUES ($1, 'B1', $2, 2021, '\x00', 'h', 1, 1, 'x', now())`, countyA, sc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO batch_item (county, batch_id, uscc, policy_year, name, refund_fen) VALUES ($1, 'B1', $2, 2021, 'x', 1)`,
		countyA, want.Units[3].USCC); err != nil {
		t.Fatal(err)
	}
	fourth := exclude
	fourth.Key = "r4"
	_, _, _, err = s.ReviewUnit(ctx, countyA, sc.ID, want.Units[3].USCC, fourth)
	wantKind(t, err, fault.ErrFailedPrecondition)
	_, _, _, err = s.ReviewUnit(ctx, countyA, sc.ID, "NOSUCHUNIT", fourth)
	wantKind(t, err, fault.ErrNotFound)
	_, _, _, err = s.ReviewUnit(ctx, countyB, sc.ID, target.USCC, fourth)
	wantKind(t, err, fault.ErrNotFound)

	list, err := s.ListReviews(ctx, countyA, store.ReviewPage{ScreeningID: sc.ID, Limit: 10})
	if err != nil || len(list) != 2 || list[0].ID != rv2.ID || list[1].ID != rv.ID {
		t.Errorf("reviews %+v, %v", list, err)
	}

	// The audit chain holds every change: 4 imports, a seal, a screening,
	// two reviews.
	c, err := s.VerifyAudit(ctx, countyA, 0, 0)
	if err != nil || !c.OK || c.Checked != 8 {
		t.Errorf("audit: %+v, %v", c, err)
	}
	es, err := s.AuditEntries(ctx, audit.Filter{Domain: countyA, ObjectType: "", AfterSeq: 6, Limit: 10})
	if err != nil || len(es) != 2 || audit.Hash(es[0]) != es[0].Hash {
		t.Errorf("entries %+v, %v", es, err)
	}
}
