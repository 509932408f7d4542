package service

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"wengang/internal/gen"
	"wengang/internal/protoconv"
	"wengang/node/store"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
)

// ncReviewed is a node with one screening of generated data whose
// catalogue cases are known.
type ncReviewed struct {
	n     *ncNode
	ds    *refund.Dataset
	cases map[string]gen.Case // by name
	sc    *wengangv1.Screening
}

func ncScreenCases(t testing.TB) *ncReviewed {
	t.Helper()
	ds, cases, err := gen.GenerateWithCases(gen.Config{Counties: []string{ncCounty}, Units: 250, Seed: 21, AsOf: ncAsOf})
	if err != nil {
		t.Fatal(err)
	}
	n := ncStart(t)
	dir := ncWriteDir(t, ds, gen.Format{})
	ncImportDir(t, n.clerk(), ncCounty, dir, "d")
	r := &ncReviewed{n: n, ds: ds, cases: make(map[string]gen.Case), sc: ncScreen(t, n.clerk(), ncCounty, "d", "screen")}
	for _, c := range cases {
		if _, dup := r.cases[c.Name]; !dup {
			r.cases[c.Name] = c
		}
	}
	return r
}

// unit returns the USCC of the catalogue case named name.
func (r *ncReviewed) unit(t testing.TB, name string) string {
	t.Helper()
	c, ok := r.cases[name]
	if !ok {
		t.Fatalf("no catalogue case %q", name)
	}
	return c.USCC
}

// input returns the rows of unit code in the generated dataset.
func (r *ncReviewed) input(code string) refund.Input {
	var in refund.Input
	for _, u := range r.ds.Units {
		if u.USCC == code {
			in.Unit = u
		}
	}
	for _, c := range r.ds.Contributions {
		if c.USCC == code {
			in.Contributions = append(in.Contributions, c)
		}
	}
	for _, a := range r.ds.Accounts {
		if a.USCC == code {
			in.Accounts = append(in.Accounts, a)
		}
	}
	for _, e := range r.ds.Exclusions {
		if e.USCC == code {
			in.Exclusions = append(in.Exclusions, e)
		}
	}
	return in
}

// result returns the current result of unit code.
func (r *ncReviewed) result(t testing.TB, code string) *wengangv1.ScreeningResult {
	t.Helper()
	res, err := r.n.clerk().Screening.ListResults(context.Background(), connect.NewRequest(&wengangv1.ListResultsRequest{
		County: ncCounty, ScreeningId: r.sc.GetScreeningId(), Query: code}))
	if err != nil || len(res.Msg.GetResults()) != 1 {
		t.Fatalf("result of %s: %v, %v", code, res, err)
	}
	return res.Msg.GetResults()[0]
}

func (r *ncReviewed) resolve(c ncClients, code, key string, fact *wengangv1.HoldFact) (*wengangv1.ResolveHoldResponse, error) {
	res, err := c.Review.ResolveHold(context.Background(), connect.NewRequest(&wengangv1.ResolveHoldRequest{County: ncCounty,
		ScreeningId: r.sc.GetScreeningId(), Uscc: code, Fact: fact, Reason: "营业执照核实 (licence checked)", IdempotencyKey: key}))
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

func ncSizeFact(s wengangv1.SizeClass) *wengangv1.HoldFact {
	return &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_SizeClass{SizeClass: s}}
}

func ncAccountFact(kind wengangv1.AccountKind, no string) *wengangv1.HoldFact {
	return &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_Account{Account: &wengangv1.Account{Kind: kind, Bank: "中国银行聊城分行", AccountNo: no, AccountName: "户名"}}}
}

func ncUSCCFact(corrected string) *wengangv1.HoldFact {
	return &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_UsccVerification{UsccVerification: &wengangv1.UsccVerification{CorrectedUscc: corrected}}}
}

// ncRight returns code with its check character made right.
func ncRight(t testing.TB, code string) string {
	t.Helper()
	c, err := uscc.CheckChar(code[:17])
	if err != nil {
		t.Fatal(err)
	}
	return code[:17] + string(c)
}

func TestReviewerIsNeverTheClerk(t *testing.T) {
	t.Parallel()
	r := ncScreenCases(t)
	ctx := context.Background()
	code := r.unit(t, "clean")
	exclude := func(c ncClients, reason, key string) error {
		_, err := c.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
			Uscc: code, Reason: reason, IdempotencyKey: key}))
		return err
	}
	for _, tc := range []struct {
		name string
		as   ncClients
		err  error
		code connect.Code
	}{
		{"the clerk", r.n.clerk(), nil, connect.CodePermissionDenied},
		{"the clerk with another token", r.n.as("tok-clerk-2", "王经办", "county_reviewer"), nil, connect.CodePermissionDenied},
	} {
		if err := exclude(tc.as, "理由", "k-"+tc.name); ncCode(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	for _, reason := range []string{"", "   "} {
		if err := exclude(r.n.reviewer(), reason, "k-reason"); ncCode(err) != connect.CodeInvalidArgument {
			t.Errorf("reason %q: %v, want InvalidArgument", reason, err)
		}
	}
	if err := exclude(r.n.reviewer(), "理由", ""); ncCode(err) != connect.CodeInvalidArgument {
		t.Errorf("no key: %v, want InvalidArgument", err)
	}
	if got := r.result(t, code); got.GetReviewed() || got.GetDecision() != wengangv1.Decision_DECISION_ELIGIBLE {
		t.Fatalf("a refused review changed the unit: %v", got)
	}
	if err := exclude(r.n.reviewer(), "经核实已停业", "k-ok"); err != nil {
		t.Fatalf("the reviewer: %v", err)
	}
	// Other units of other screenings: ResolveHold and ReinstateUnit are
	// refused to the clerk as well.
	_, err := r.resolve(r.n.clerk(), r.unit(t, "size unknown"), "k-r", ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_SMALL))
	ncWantCode(t, err, connect.CodePermissionDenied)
	_, err = r.n.clerk().Review.ReinstateUnit(ctx, connect.NewRequest(&wengangv1.ReinstateUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
		Uscc: r.unit(t, "large"), Reason: "理由", IdempotencyKey: "k-i"}))
	ncWantCode(t, err, connect.CodePermissionDenied)
}

func TestExcludeAndReinstate(t *testing.T) {
	t.Parallel()
	r := ncScreenCases(t)
	ctx := context.Background()
	rv := r.n.reviewer()
	p := refund.DefaultParams()
	exclude := func(code, key string) (*wengangv1.ExcludeUnitResponse, error) {
		res, err := rv.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
			Uscc: code, Reason: "现场核查不符", IdempotencyKey: key}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	reinstate := func(code, key string) (*wengangv1.ReinstateUnitResponse, error) {
		res, err := rv.Review.ReinstateUnit(ctx, connect.NewRequest(&wengangv1.ReinstateUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
			Uscc: code, Reason: "复议后恢复", IdempotencyKey: key}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}

	clean := r.unit(t, "clean")
	before := r.result(t, clean)
	ex, err := exclude(clean, "e1")
	if err != nil {
		t.Fatal(err)
	}
	if res := ex.GetResult(); res.GetDecision() != wengangv1.Decision_DECISION_INELIGIBLE || res.GetRefundFen() != 0 || !res.GetReviewed() ||
		res.GetScreenedDecision() != wengangv1.Decision_DECISION_ELIGIBLE || res.GetScreenedRefundFen() != before.GetRefundFen() {
		t.Errorf("excluded: %v", res)
	}
	if v := ex.GetReview(); v.GetAction() != wengangv1.ReviewAction_REVIEW_ACTION_EXCLUDE || v.GetDecisionBefore() != wengangv1.Decision_DECISION_ELIGIBLE ||
		v.GetDecisionAfter() != wengangv1.Decision_DECISION_INELIGIBLE || v.GetRefundBeforeFen() != before.GetRefundFen() || v.GetRefundAfterFen() != 0 ||
		v.GetReviewer() != "tok-reviewer" || v.GetReason() != "现场核查不符" {
		t.Errorf("review: %v", v)
	}
	_, err = exclude(clean, "e2")
	ncWantCode(t, err, connect.CodeFailedPrecondition)
	back, err := reinstate(clean, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if res := back.GetResult(); res.GetDecision() != wengangv1.Decision_DECISION_ELIGIBLE || res.GetRefundFen() != before.GetRefundFen() {
		t.Errorf("reinstated: %v, want as before %v", res, before)
	}
	_, err = reinstate(clean, "r2")
	ncWantCode(t, err, connect.CodeFailedPrecondition)

	// A refused unit reinstated: eligible with the refund its base gives.
	large := r.unit(t, "large")
	res, err := reinstate(large, "r3")
	if err != nil {
		t.Fatal(err)
	}
	if got := res.GetResult(); got.GetDecision() != wengangv1.Decision_DECISION_ELIGIBLE || got.GetRefundFen() != p.Refund(got.GetBaseFen()) || got.GetRefundFen() == 0 {
		t.Errorf("reinstated large unit: %v", got)
	}
	// Refused, with no account: reinstated, it is held for the account,
	// which then clears it.
	noAccount := r.unit(t, "refused and no account")
	res, err = reinstate(noAccount, "r4")
	if err != nil {
		t.Fatal(err)
	}
	got := res.GetResult()
	if got.GetDecision() != wengangv1.Decision_DECISION_HOLD || !hasReason(got, wengangv1.Reason_REASON_ACCOUNT_MISSING) ||
		!hasReason(got, wengangv1.Reason_REASON_NOT_SERVICE_INDUSTRY) {
		t.Errorf("reinstated without an account: %v", got)
	}
	resolved, err := r.resolve(rv, noAccount, "r5", ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, "6222020000000001"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resolved.GetResult(); got.GetDecision() != wengangv1.Decision_DECISION_ELIGIBLE || got.GetPayee().GetAccountNo() != "6222020000000001" ||
		got.GetRefundFen() != p.Refund(got.GetBaseFen()) {
		t.Errorf("reinstated, then given an account: %v", got)
	}
	// A held unit can be excluded.
	if _, err := exclude(r.unit(t, "size unknown"), "e3"); err != nil {
		t.Errorf("excluding a held unit: %v", err)
	}

	// Replays, and a key used for another request.
	again, err := exclude(clean, "e1")
	if err != nil || again.GetReview().GetReviewId() != ex.GetReview().GetReviewId() {
		t.Errorf("replay: %v, %v", again, err)
	}
	_, err = rv.Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
		Uscc: clean, Reason: "另一个理由", IdempotencyKey: "e1"}))
	ncWantCode(t, err, connect.CodeAlreadyExists)
	_, err = exclude("91371502MA00000000", "e9")
	ncWantCode(t, err, connect.CodeNotFound)

	// The reviewed tally follows; the screened one does not.
	sc, err := rv.Screening.GetScreening(ctx, connect.NewRequest(&wengangv1.GetScreeningRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId()}))
	if err != nil {
		t.Fatal(err)
	}
	s, v := sc.Msg.GetScreening().GetScreened(), sc.Msg.GetScreening().GetReviewed()
	if !sameTally(s, r.sc.GetScreened()) || v.GetEligible().GetCount() != s.GetEligible().GetCount()+2 || v.GetHold().GetCount() != s.GetHold().GetCount()-1 {
		t.Errorf("tallies: screened %v, reviewed %v", s, v)
	}

	// ListReviews: newest first, by unit, a page at a time.
	var actions []string
	lr := &wengangv1.ListReviewsRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(), Uscc: clean, PageSize: 1}
	for {
		res, err := rv.Review.ListReviews(ctx, connect.NewRequest(lr))
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range res.Msg.GetReviews() {
			actions = append(actions, x.GetAction().String())
		}
		if lr.PageToken = res.Msg.GetNextPageToken(); lr.PageToken == "" {
			break
		}
	}
	if strings.Join(actions, ",") != "REVIEW_ACTION_REINSTATE,REVIEW_ACTION_EXCLUDE" {
		t.Errorf("reviews of %s: %v", clean, actions)
	}
}

func hasReason(r *wengangv1.ScreeningResult, want wengangv1.Reason) bool {
	for _, x := range r.GetReasons() {
		if x == want {
			return true
		}
	}
	return false
}

func TestResolveHoldRedecides(t *testing.T) {
	t.Parallel()
	r := ncScreenCases(t)
	rv := r.n.reviewer()
	p := refund.DefaultParams()
	// decide is what the rules give unit code with its file's rows changed
	// by change.
	decide := func(code string, change func(*refund.Input)) refund.Result {
		in := r.input(code)
		change(&in)
		s := &refund.Screener{Params: p, AsOf: ncAsOf}
		return s.Decide(&in)
	}
	type step struct {
		fact    *wengangv1.HoldFact
		want    refund.Result // decision, reasons, refund and payee account to see
		code    connect.Code
		checkID bool
	}
	corporate := refund.Account{Kind: refund.AccountCorporate, Bank: "中国银行聊城分行", AccountNo: "6222020000000009", AccountName: "户名"}
	social := refund.Account{Kind: refund.AccountSocialInsurance, Bank: "中国银行聊城分行", AccountNo: "6222020000000010", AccountName: "户名"}
	for _, tc := range []struct {
		name  string
		steps func(code string) []step
	}{
		{"size unknown and no account", func(code string) []step {
			return []step{
				{fact: ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_SMALL), want: decide(code, func(in *refund.Input) { in.Unit.Size = refund.SizeSmall })},
				{fact: ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, corporate.AccountNo), want: decide(code, func(in *refund.Input) {
					in.Unit.Size = refund.SizeSmall
					a := corporate
					a.USCC = code
					in.Accounts = append([]refund.Account{a}, in.Accounts...)
				})},
			}
		}},
		{"social-insurance account only, size unknown", func(code string) []step {
			return []step{
				// Its social-insurance account is not accepted before its size is known.
				{fact: ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_SOCIAL_INSURANCE, social.AccountNo), code: connect.CodeInvalidArgument},
				{fact: ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_MICRO), want: decide(code, func(in *refund.Input) { in.Unit.Size = refund.SizeMicro })},
			}
		}},
		{"size unknown", func(code string) []step {
			return []step{
				{fact: ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_UNSPECIFIED), code: connect.CodeInvalidArgument},
				{fact: ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, "1"), code: connect.CodeFailedPrecondition},
				{fact: ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_LARGE), want: decide(code, func(in *refund.Input) { in.Unit.Size = refund.SizeLarge })},
			}
		}},
		{"check character wrong", func(code string) []step {
			verified := decide(code, func(*refund.Input) {})
			verified.Reasons &^= refund.Reasons(0).With(refund.USCCChecksum)
			verified.Decision = refund.Eligible
			return []step{
				{fact: ncUSCCFact("91350203M0001QAY9X"), code: connect.CodeInvalidArgument},
				{fact: ncUSCCFact(""), want: verified, checkID: true},
			}
		}},
		{"check character wrong and no account", func(code string) []step {
			right := ncRight(t, code)
			return []step{
				{fact: ncUSCCFact(right), want: decide(code, func(in *refund.Input) { in.Unit.USCC = right })},
				{fact: ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, corporate.AccountNo), want: decide(code, func(in *refund.Input) {
					in.Unit.USCC = right
					in.Accounts = append([]refund.Account{corporate}, in.Accounts...)
				})},
			}
		}},
		{"social-insurance account only, medium", func(code string) []step {
			return []step{
				{fact: ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_SOCIAL_INSURANCE, social.AccountNo), code: connect.CodeInvalidArgument},
				{fact: ncAccountFact(wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, corporate.AccountNo), want: decide(code, func(in *refund.Input) {
					in.Accounts = append([]refund.Account{corporate}, in.Accounts...)
				})},
			}
		}},
		{"clean", func(code string) []step {
			return []step{{fact: ncSizeFact(wengangv1.SizeClass_SIZE_CLASS_SMALL), code: connect.CodeFailedPrecondition}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := r.unit(t, tc.name)
			for i, s := range tc.steps(code) {
				res, err := r.resolve(rv, code, fmt.Sprintf("%s-%d", tc.name, i), s.fact)
				if s.code != 0 {
					if ncCode(err) != s.code {
						t.Fatalf("step %d: %v, want %v", i, err, s.code)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				got, w := res.GetResult(), s.want
				if got.GetDecision() != protoconv.Decision(w.Decision) || fmt.Sprint(got.GetReasons()) != fmt.Sprint(protoconv.Reasons(w.Reasons)) ||
					got.GetRefundFen() != w.RefundFen || got.GetPayee().GetAccountNo() != w.Payee.AccountNo || !got.GetReviewed() {
					t.Errorf("step %d: %v, want %v %v refund %d payee %q", i, got, w.Decision, w.Reasons, w.RefundFen, w.Payee.AccountNo)
				}
				if s.checkID && !got.GetUsccVerified() {
					t.Errorf("step %d: not marked uscc_verified", i)
				}
				if f := res.GetReview().GetFact(); res.GetReview().GetAction() != wengangv1.ReviewAction_REVIEW_ACTION_RESOLVE_HOLD || f == nil {
					t.Errorf("step %d: review %v", i, res.GetReview())
				}
			}
		})
	}
	// The case the issue names: ACCOUNT_MISSING and SIZE_MISSING, both
	// facts given, is eligible.
	if got := r.result(t, r.unit(t, "size unknown and no account")); got.GetDecision() != wengangv1.Decision_DECISION_ELIGIBLE || len(got.GetReasons()) != 0 {
		t.Errorf("after both facts: %v", got)
	}
	// A corrected code that is another unit's is refused.
	_, err := r.resolve(rv, r.unit(t, "check character wrong"), "dup", ncUSCCFact(r.unit(t, "clean")))
	if c := ncCode(err); c != connect.CodeFailedPrecondition {
		t.Errorf("a corrected code of another unit: %v", err)
	}
}

func TestReviewRefusesUnitsInLiveBatches(t *testing.T) {
	t.Parallel()
	r := ncScreenCases(t)
	ctx := context.Background()
	code := r.unit(t, "clean")
	_, err := r.n.pool.Exec(ctx, `INSERT INTO batch (county, id, screening_id, policy_year, content, content_hash, item_count, total_fen, sealed_by, sealed_at)
		VALUES ($1, '371502-B000001', $2, 2021, '\x00', 'h', 1, 100, 'tok-clerk', now())`, ncCounty, r.sc.GetScreeningId())
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.n.pool.Exec(ctx, `INSERT INTO batch_item (county, batch_id, uscc, policy_year, name, refund_fen) VALUES ($1, '371502-B000001', $2, 2021, 'x', 100)`, ncCounty, code)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.result(t, code); got.GetBatchId() != "371502-B000001" {
		t.Errorf("batch id %q", got.GetBatchId())
	}
	_, err = r.n.reviewer().Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
		Uscc: code, Reason: "理由", IdempotencyKey: "k"}))
	ncWantCode(t, err, connect.CodeFailedPrecondition)
	// Once the city rejects the item it is no longer live.
	if _, err := r.n.pool.Exec(ctx, `UPDATE batch_item SET live = false`); err != nil {
		t.Fatal(err)
	}
	_, err = r.n.reviewer().Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: r.sc.GetScreeningId(),
		Uscc: code, Reason: "理由", IdempotencyKey: "k"}))
	if err != nil {
		t.Errorf("after the batch item died: %v", err)
	}
}

// TestRedecide checks the re-decision against the rules on inputs changed
// by hand, for every override.
func TestRedecide(t *testing.T) {
	t.Parallel()
	p := refund.DefaultParams()
	ds, cases, err := gen.GenerateWithCases(gen.Config{Counties: []string{ncCounty}, Units: 120, Seed: 8, AsOf: ncAsOf})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]refund.Input{}
	for _, u := range ds.Units {
		inputs[u.USCC] = refund.Input{Unit: u}
	}
	for _, c := range ds.Contributions {
		if in, ok := inputs[c.USCC]; ok {
			in.Contributions = append(in.Contributions, c)
			inputs[c.USCC] = in
		}
	}
	for _, a := range ds.Accounts {
		if in, ok := inputs[a.USCC]; ok {
			in.Accounts = append(in.Accounts, a)
			inputs[a.USCC] = in
		}
	}
	for _, e := range ds.Exclusions {
		if in, ok := inputs[e.USCC]; ok {
			in.Exclusions = append(in.Exclusions, e)
			inputs[e.USCC] = in
		}
	}
	s := &refund.Screener{Params: p, AsOf: ncAsOf}
	for _, c := range cases {
		in, ok := inputs[c.USCC]
		if !ok {
			continue // rows of a USCC that is not a unit
		}
		rules := s.Decide(&in)
		// No fact, no override: the rules' own decision.
		out, verified, corrected := redecide(p, ncAsOf, in, nil, store.OverrideNone)
		if out.Decision != rules.Decision || out.Reasons != rules.Reasons || out.RefundFen != rules.RefundFen || verified || corrected != "" {
			t.Errorf("%s: redecide %+v, rules %+v", c.Name, out, rules)
		}
		// Excluded: ineligible, refund 0, reasons kept.
		out, _, _ = redecide(p, ncAsOf, in, nil, store.OverrideExcluded)
		if out.Decision != refund.Ineligible || out.RefundFen != 0 || out.Reasons != rules.Reasons {
			t.Errorf("%s: excluded %+v", c.Name, out)
		}
		// Reinstated: refusals set aside; holds and the account stay.
		out, _, _ = redecide(p, ncAsOf, in, nil, store.OverrideReinstated)
		if rules.Decision != refund.Ineligible {
			if out.Decision != rules.Decision || out.RefundFen != rules.RefundFen {
				t.Errorf("%s: reinstating a unit that is not ineligible changed it: %+v", c.Name, out)
			}
		} else {
			holds := rules.Reasons &^ rules.Reasons.Refusals()
			if rules.Payee.Kind == 0 {
				holds = holds.With(refund.AccountMissing)
			}
			want := refund.Eligible
			if holds != 0 {
				want = refund.Hold
			}
			if out.Decision != want || out.RefundFen != p.Refund(rules.BaseFen) || out.Reasons&^out.Reasons.Refusals() != holds {
				t.Errorf("%s: reinstated %+v, want %v with holds %v", c.Name, out, want, holds)
			}
		}
	}
}
