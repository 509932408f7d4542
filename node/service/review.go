package service

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// ExcludeUnit takes an eligible or held unit out (剔除): it becomes
// ineligible with refund 0, with the reviewer's written reason.
func (s *ReviewService) ExcludeUnit(ctx context.Context, req *connect.Request[wengangv1.ExcludeUnitRequest]) (*connect.Response[wengangv1.ExcludeUnitResponse], error) {
	m := req.Msg
	rv, res, err := s.review(ctx, reviewRequest{action: store.ActionExclude, procedure: wengangv1connect.ReviewServiceExcludeUnitProcedure,
		county: m.GetCounty(), screeningID: m.GetScreeningId(), uscc: m.GetUscc(), reason: m.GetReason(), key: m.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.ExcludeUnitResponse{Review: rv, Result: res}), nil
}

// ReinstateUnit puts an ineligible unit back (恢复): its refusals are set
// aside, so it becomes eligible with the refund its base gives, or stays
// held while a hold reason remains (ACCOUNT_MISSING when it has no payable
// account).
func (s *ReviewService) ReinstateUnit(ctx context.Context, req *connect.Request[wengangv1.ReinstateUnitRequest]) (*connect.Response[wengangv1.ReinstateUnitResponse], error) {
	m := req.Msg
	rv, res, err := s.review(ctx, reviewRequest{action: store.ActionReinstate, procedure: wengangv1connect.ReviewServiceReinstateUnitProcedure,
		county: m.GetCounty(), screeningID: m.GetScreeningId(), uscc: m.GetUscc(), reason: m.GetReason(), key: m.GetIdempotencyKey()})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.ReinstateUnitResponse{Review: rv, Result: res}), nil
}

// ResolveHold records the fact a held unit lacked and re-decides the unit
// with the rules, under the screening's parameters and as-of date, on its
// rows of the dataset with every fact recorded for it.
func (s *ReviewService) ResolveHold(ctx context.Context, req *connect.Request[wengangv1.ResolveHoldRequest]) (*connect.Response[wengangv1.ResolveHoldResponse], error) {
	m := req.Msg
	rv, res, err := s.review(ctx, reviewRequest{action: store.ActionResolveHold, procedure: wengangv1connect.ReviewServiceResolveHoldProcedure,
		county: m.GetCounty(), screeningID: m.GetScreeningId(), uscc: m.GetUscc(), reason: m.GetReason(), key: m.GetIdempotencyKey(),
		fact: m.GetFact(), needFact: true})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.ResolveHoldResponse{Review: rv, Result: res}), nil
}

// reviewRequest is what the three review RPCs ask.
type reviewRequest struct {
	action                                 store.ReviewAction
	procedure                              string
	county, screeningID, uscc, reason, key string
	fact                                   *wengangv1.HoldFact
	needFact                               bool
}

// review checks a request, then reviews the unit in one transaction: four
// eyes, the idempotency key, the live-batch lock, the precondition of the
// action, the re-decision, the review record and its audit entry.
func (s *ReviewService) review(ctx context.Context, rq reviewRequest) (*wengangv1.Review, *wengangv1.ScreeningResult, error) {
	var bad rpc.Fields
	county, id := screeningFields(&bad, rq.county, rq.screeningID)
	code := uscc.Normalize(rq.uscc)
	if code == "" {
		bad.Add("uscc", "required")
	}
	reason := strings.TrimSpace(rq.reason)
	if reason == "" {
		bad.Add("reason", "a written reason is required (须填写理由)")
	}
	if rq.key == "" {
		bad.Add("idempotency_key", "required")
	} else if len(rq.key) > 200 {
		bad.Add("idempotency_key", "longer than 200 bytes")
	}
	var fact store.Fact
	if rq.needFact {
		fact = holdFact(&bad, code, rq.fact)
	}
	if err := bad.Err(); err != nil {
		return nil, nil, err
	}
	if err := s.serves(county); err != nil {
		return nil, nil, err
	}
	if fact.Kind == store.FactUSCC && fact.CorrectedUSCC != "" {
		if other, err := s.Store.GetResult(ctx, county, id, fact.CorrectedUSCC); err == nil {
			return nil, nil, fault.New(fault.ErrFailedPrecondition,
				"the corrected USCC %s is already unit %s (%s) of this screening (纠正后的代码已属其他单位)", fact.CorrectedUSCC, other.USCC, other.Name)
		} else if fault.Kind(err) != fault.ErrNotFound {
			return nil, nil, err
		}
	}

	by := caller(ctx)
	request := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s\x00%s\x00%s\x00%d\x00%d\x00%s\x00%s\x00%s\x00%s\x00%s",
		rq.action, id, code, reason, fact.Kind, fact.Size, fact.Account.Kind, fact.Account.Bank, fact.Account.BankCode,
		fact.Account.AccountNo, fact.Account.AccountName, fact.CorrectedUSCC)))
	var params refund.Params
	rv, res, _, err := s.Store.ReviewUnit(ctx, county, id, code, store.ReviewOps{
		Key: rq.key, RequestSHA256: request,
		Guard: func(sc store.Screening) error { return fourEyes(by, sc) },
		Decide: func(u *store.UnitReview) (store.ReviewChange, error) {
			var err error
			if params, err = screeningParams(u.Screening); err != nil {
				return store.ReviewChange{}, err
			}
			return decideReview(rq.action, fact, u, params, store.Review{Action: rq.action, Reason: reason, Fact: fact,
				Reviewer: by.Subject, ReviewerName: by.Name, ReviewedAt: s.Now()})
		},
		Audit: func(rv store.Review, res store.Result) audit.Entry {
			return reviewAudit(rq.procedure, by, rv, s.Now())
		},
	})
	if err != nil {
		return nil, nil, err
	}
	if params.ID == "" { // a replay: Decide did not run
		sc, err := s.Store.GetScreening(ctx, county, id)
		if err != nil {
			return nil, nil, err
		}
		if params, err = screeningParams(sc); err != nil {
			return nil, nil, err
		}
	}
	return reviewMessage(rv), resultMessage(&res, params), nil
}

// fourEyes refuses a review by the person who ran the screening, by token
// subject or by name.
func fourEyes(by access.Principal, sc store.Screening) error {
	if by.Subject == sc.RunBy || (by.Name != "" && by.Name == sc.RunByName) {
		return fault.New(fault.ErrPermissionDenied,
			"four eyes (双人复核): %s ran screening %d and may not review it; another reviewer must", sc.RunBy, sc.ID)
	}
	return nil
}

// holdFact reads the fact of a ResolveHold request for unit code.
func holdFact(bad *rpc.Fields, code string, hf *wengangv1.HoldFact) store.Fact {
	switch f := hf.GetFact().(type) {
	case *wengangv1.HoldFact_Account:
		a, err := protoconv.ToAccount(code, f.Account)
		if err != nil {
			bad.Add("fact.account", "%v", err)
		}
		return store.Fact{Kind: store.FactAccount, Account: a}
	case *wengangv1.HoldFact_SizeClass:
		sz, err := protoconv.ToSize(f.SizeClass)
		if err != nil || sz == refund.SizeUnknown {
			bad.Add("fact.size_class", "a size class is required: large, medium, small or micro")
		}
		return store.Fact{Kind: store.FactSize, Size: sz}
	case *wengangv1.HoldFact_UsccVerification:
		corrected := uscc.Normalize(f.UsccVerification.GetCorrectedUscc())
		if corrected != "" {
			if st, err := uscc.Check(corrected); err != nil {
				bad.Add("fact.uscc_verification.corrected_uscc", "%v", err)
			} else if st != uscc.Valid {
				bad.Add("fact.uscc_verification.corrected_uscc", "%s fails the GB 32100 check character too (校验码不符)", corrected)
			} else if corrected == code {
				bad.Add("fact.uscc_verification.corrected_uscc", "the same as the recorded code")
			}
		}
		return store.Fact{Kind: store.FactUSCC, CorrectedUSCC: corrected}
	}
	bad.Add("fact", "required: an account, a size class or a USCC verification")
	return store.Fact{}
}

// factReason is the hold reason a fact answers.
var factReason = map[store.FactKind]refund.Reason{
	store.FactAccount: refund.AccountMissing,
	store.FactSize:    refund.SizeMissing,
	store.FactUSCC:    refund.USCCChecksum,
}

// decideReview checks the precondition of action on a unit and returns the
// change: the unit re-decided with its facts (and fact, for a resolve) and
// its override.
func decideReview(action store.ReviewAction, fact store.Fact, u *store.UnitReview, p refund.Params, rv store.Review) (store.ReviewChange, error) {
	cur := u.Result.Current
	override := u.Result.Override
	facts := u.Facts
	switch action {
	case store.ActionExclude:
		if cur.Decision == refund.Ineligible {
			return store.ReviewChange{}, fault.New(fault.ErrFailedPrecondition, "unit %s is already ineligible (已不符合条件)", u.Result.USCC)
		}
		override = store.OverrideExcluded
	case store.ActionReinstate:
		if cur.Decision != refund.Ineligible {
			return store.ReviewChange{}, fault.New(fault.ErrFailedPrecondition, "unit %s is %s, not ineligible: only an ineligible unit can be reinstated", u.Result.USCC, cur.Decision)
		}
		override = store.OverrideReinstated
	case store.ActionResolveHold:
		want := factReason[fact.Kind]
		if cur.Decision != refund.Hold || !cur.Reasons.Has(want) {
			return store.ReviewChange{}, fault.New(fault.ErrFailedPrecondition,
				"unit %s is not held for %s (decision %s, reasons %q): the fact answers nothing", u.Result.USCC, want, cur.Decision, cur.Reasons)
		}
		if fact.Kind == store.FactAccount && fact.Account.Kind == refund.AccountSocialInsurance &&
			cur.Size != refund.SizeSmall && cur.Size != refund.SizeMicro {
			return store.ReviewChange{}, fault.New(fault.ErrInvalid,
				"a social-insurance account is accepted for small and micro units only; unit %s is %q: give a corporate account, or its size class first (社保缴费账户仅限小微企业)", u.Result.USCC, cur.Size)
		}
		facts = append(facts[:len(facts):len(facts)], fact)
	}
	out, verified, corrected := redecide(p, u.Screening.AsOf, u.Input, facts, override)
	return store.ReviewChange{Current: out, USCCVerified: verified, CorrectedUSCC: corrected, Override: override, Review: rv}, nil
}

// redecide is the rules' decision on a unit's rows with the recorded facts
// applied in order — a size class replaces the file's, an account comes
// before the file's accounts, a corrected USCC replaces the file's code and
// a verified one clears USCC_CHECKSUM — then a reviewer's override.
func redecide(p refund.Params, asOf civil.Date, in refund.Input, facts []store.Fact, ov store.Override) (out store.Outcome, verified bool, corrected string) {
	for _, f := range facts {
		switch f.Kind {
		case store.FactSize:
			in.Unit.Size = f.Size
		case store.FactAccount:
			in.Accounts = append([]refund.Account{f.Account}, in.Accounts...)
		case store.FactUSCC:
			corrected, verified = f.CorrectedUSCC, f.CorrectedUSCC == ""
		}
	}
	if corrected != "" {
		in.Unit.USCC = corrected
	}
	sc := &refund.Screener{Params: p, AsOf: asOf}
	r := sc.Decide(&in)
	why := r.Reasons
	if verified {
		why &^= refund.Reasons(0).With(refund.USCCChecksum)
	}
	decision := decisionOf(why)
	refundFen := r.RefundFen
	switch ov {
	case store.OverrideExcluded:
		decision, refundFen = refund.Ineligible, 0
	case store.OverrideReinstated:
		if decision == refund.Ineligible {
			if r.Payee.Kind == 0 {
				why = why.With(refund.AccountMissing)
			}
			decision = refund.Eligible
			if why&^why.Refusals() != 0 {
				decision = refund.Hold
			}
			refundFen = p.Refund(r.BaseFen)
		}
	}
	return store.Outcome{Decision: decision, Reasons: why, RefundFen: refundFen, Size: in.Unit.Size, Payee: r.Payee}, verified, corrected
}

// decisionOf is the decision a set of reasons gives (DOMAIN.md).
func decisionOf(why refund.Reasons) refund.Decision {
	switch {
	case why.Refusals() != 0:
		return refund.Ineligible
	case why != 0:
		return refund.Hold
	}
	return refund.Eligible
}

// reviewAudit is the audit entry of a review.
func reviewAudit(procedure string, by access.Principal, rv store.Review, at time.Time) audit.Entry {
	d := map[string]any{
		"review_id": rv.ID, "action": rv.Action, "reason": rv.Reason,
		"decision_before": rv.DecisionBefore.String(), "decision_after": rv.DecisionAfter.String(),
		"refund_before_fen": rv.RefundBeforeFen, "refund_after_fen": rv.RefundAfterFen,
	}
	switch f := rv.Fact; f.Kind {
	case store.FactSize:
		d["fact"] = map[string]any{"size": f.Size.String()}
	case store.FactAccount:
		d["fact"] = map[string]any{"account_kind": f.Account.Kind.String(), "bank": f.Account.Bank, "account_no": f.Account.AccountNo, "account_name": f.Account.AccountName}
	case store.FactUSCC:
		d["fact"] = map[string]any{"corrected_uscc": f.CorrectedUSCC, "verified": f.CorrectedUSCC == ""}
	}
	detail, _ := json.Marshal(d)
	return audit.Entry{Domain: rv.County, At: at, Actor: by, Action: procedure, ObjectType: "screening_result",
		ObjectID: fmt.Sprintf("%d/%s", rv.ScreeningID, rv.USCC), Detail: string(detail)}
}

// ListReviews lists review actions of the county, newest first, by
// screening and unit.
func (s *ReviewService) ListReviews(ctx context.Context, req *connect.Request[wengangv1.ListReviewsRequest]) (*connect.Response[wengangv1.ListReviewsResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	county := strings.TrimSpace(m.GetCounty())
	if county == "" {
		bad.Add("county", "required")
	}
	size := rpc.PageSize(&bad, m.GetPageSize(), 100)
	page := store.ReviewPage{USCC: uscc.Normalize(m.GetUscc()), Limit: size + 1}
	if v := m.GetScreeningId(); v != "" {
		page.ScreeningID = rpc.ParseID(&bad, "screening_id", v)
	}
	if tok := m.GetPageToken(); tok != "" {
		page.BeforeID = rpc.ReadIDPageToken(&bad, "reviews/"+county, tok)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.serves(county); err != nil {
		return nil, err
	}
	rvs, err := s.Store.ListReviews(ctx, county, page)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListReviewsResponse{}
	if len(rvs) > size {
		rvs = rvs[:size]
		res.NextPageToken = rpc.IDPageToken("reviews/"+county, rvs[size-1].ID)
	}
	for _, rv := range rvs {
		res.Reviews = append(res.Reviews, reviewMessage(rv))
	}
	return connect.NewResponse(res), nil
}

var reviewActions = map[store.ReviewAction]wengangv1.ReviewAction{
	store.ActionExclude:     wengangv1.ReviewAction_REVIEW_ACTION_EXCLUDE,
	store.ActionReinstate:   wengangv1.ReviewAction_REVIEW_ACTION_REINSTATE,
	store.ActionResolveHold: wengangv1.ReviewAction_REVIEW_ACTION_RESOLVE_HOLD,
}

// reviewMessage returns a review as a message.
func reviewMessage(rv store.Review) *wengangv1.Review {
	msg := &wengangv1.Review{
		ReviewId: strconv.FormatInt(rv.ID, 10), County: rv.County, ScreeningId: strconv.FormatInt(rv.ScreeningID, 10),
		Uscc: rv.USCC, Action: reviewActions[rv.Action], Reason: rv.Reason,
		DecisionBefore: protoconv.Decision(rv.DecisionBefore), DecisionAfter: protoconv.Decision(rv.DecisionAfter),
		RefundBeforeFen: rv.RefundBeforeFen, RefundAfterFen: rv.RefundAfterFen,
		Reviewer: rv.Reviewer, ReviewedAt: timestamppb.New(rv.ReviewedAt),
	}
	switch f := rv.Fact; f.Kind {
	case store.FactAccount:
		msg.Fact = &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_Account{Account: protoconv.Account(f.Account)}}
	case store.FactSize:
		msg.Fact = &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_SizeClass{SizeClass: protoconv.Size(f.Size)}}
	case store.FactUSCC:
		msg.Fact = &wengangv1.HoldFact{Fact: &wengangv1.HoldFact_UsccVerification{UsccVerification: &wengangv1.UsccVerification{CorrectedUscc: f.CorrectedUSCC}}}
	}
	return msg
}
