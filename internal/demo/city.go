package demo

import (
	"fmt"
	"io"
	"strings"

	"connectrpc.com/connect"

	"wengang/client"
	"wengang/internal/protoconv"
	"wengang/policy/access"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
)

// cityAs returns the city's clients as one role of the city sees them
// ("" for the public).
func (r *run) cityAs(role string) (*client.City, error) {
	return client.NewCity(r.cityURL, client.Options{CAFile: r.certs.CA, Token: r.tokens[role+"@"+access.DomainCity]})
}

// cityFlow takes the received batches to paid: the conflict, the round and
// its approval, an objection, release, funding, payment, a return and its
// re-issue.
func (r *run) cityFlow() error {
	ctx := r.ctx
	admin, err := r.cityAs(access.RoleCityAdmin)
	if err != nil {
		return err
	}
	approver, err := r.cityAs(access.RoleCityApprover)
	if err != nil {
		return err
	}
	finance, err := r.cityAs(access.RoleFinance)
	if err != nil {
		return err
	}
	public, err := r.cityAs("")
	if err != nil {
		return err
	}

	// The cross-county duplicate: keep the first county's item.
	conflicts, err := admin.Intake.ListConflicts(ctx, connect.NewRequest(&wengangv1.ListConflictsRequest{}))
	if err != nil {
		return fmt.Errorf("list conflicts: %w", err)
	}
	for _, c := range conflicts.Msg.GetConflicts() {
		keep := c.GetParties()[0]
		if _, err := admin.Intake.ResolveConflict(ctx, connect.NewRequest(&wengangv1.ResolveConflictRequest{ConflictId: c.GetConflictId(),
			KeepCounty: keep.GetCounty(), KeepBatchId: keep.GetBatchId(), Reason: "该企业参保地为" + keep.GetCounty() + "，由其参保地发放"})); err != nil {
			return fmt.Errorf("resolve conflict: %w", err)
		}
		r.say("conflict %s: %s in %d counties; kept %s", c.GetConflictId(), c.GetUscc(), len(c.GetParties()), keep.GetCounty())
	}

	// A round of every county's batch, from the first day of publicity.
	batches, err := admin.Intake.ListReceivedBatches(ctx, connect.NewRequest(&wengangv1.ListReceivedBatchesRequest{}))
	if err != nil {
		return fmt.Errorf("list batches: %w", err)
	}
	var refs []*wengangv1.BatchRef
	for _, b := range batches.Msg.GetBatches() {
		refs = append(refs, &wengangv1.BatchRef{County: b.GetCounty(), BatchId: b.GetBatchId()})
	}
	r.today.set(publicityDay)
	created, err := admin.Publicity.CreateRound(ctx, connect.NewRequest(&wengangv1.CreateRoundRequest{
		Title: "2022年普惠性服务业失业保险稳岗返还（第一批）", Batches: refs, StartDate: protoconv.Date(publicityDay),
		ObjectionContact: &wengangv1.ObjectionContact{Office: "聊城市社会保险事业中心失业保险科", Phone: "0635-12333", Address: "聊城市东昌府区"},
		IdempotencyKey:   client.NewKey(),
	}))
	if err != nil {
		return fmt.Errorf("create round: %w", err)
	}
	round := created.Msg.GetRound()
	if _, err := approver.Publicity.ApproveRound(ctx, connect.NewRequest(&wengangv1.ApproveRoundRequest{RoundId: round.GetRoundId(), Comment: "同意公示"})); err != nil {
		return fmt.Errorf("approve round: %w", err)
	}
	r.say("round %s: %d enterprises, %s to %s, approved", round.GetRoundId(), round.GetEntryCount(), publicityDay, civilDate(round.GetEndDate()))

	// An objection through the portal, dismissed after a check.
	list, err := public.Portal.ListPublicity(ctx, connect.NewRequest(&wengangv1.ListPublicityRequest{RoundId: round.GetRoundId(), PageSize: 1}))
	if err != nil || len(list.Msg.GetEntries()) == 0 {
		return fmt.Errorf("portal list: %v", err)
	}
	target := list.Msg.GetEntries()[0]
	obj, err := public.Portal.SubmitObjection(ctx, connect.NewRequest(&wengangv1.SubmitObjectionRequest{RoundId: round.GetRoundId(),
		Uscc: target.GetUscc(), ContactName: "王先生", ContactPhone: "13800000000", Text: "该单位2021年曾裁员，是否符合条件？", IdempotencyKey: client.NewKey()}))
	if err != nil {
		return fmt.Errorf("submit objection: %w", err)
	}
	if _, err := admin.Publicity.ResolveObjection(ctx, connect.NewRequest(&wengangv1.PublicityServiceResolveObjectionRequest{ObjectionId: obj.Msg.GetObjectionId(),
		Resolution: wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED, Reason: "经核查，该单位裁员率未超过规定标准"})); err != nil {
		return fmt.Errorf("resolve objection: %w", err)
	}
	r.say("objection %s against %s: dismissed after a check", obj.Msg.GetObjectionId(), target.GetName())

	// After the end of publicity: release, funding, payment.
	r.today.set(releaseDay)
	rel, err := approver.Publicity.ReleaseRound(ctx, connect.NewRequest(&wengangv1.ReleaseRoundRequest{RoundId: round.GetRoundId()}))
	if err != nil {
		return fmt.Errorf("release round: %w", err)
	}
	r.say("released: %d instructions, %d fen", rel.Msg.GetReleased().GetCount(), rel.Msg.GetReleased().GetAmountFen())
	returned, err := r.fundAndPay(finance, rel.Msg.GetFundingRequests(), true)
	if err != nil {
		return err
	}

	// The returned payment: its county records a corrected account, the
	// city re-issues it, finance pays it.
	if err := r.correctReturned(finance, returned); err != nil {
		return err
	}
	if err := r.reconcile(finance); err != nil {
		return err
	}
	return r.progress(admin)
}

// progress waits until the city's dashboard shows every county's
// screening as its node reported it, and every county paid by its
// deadline.
func (r *run) progress(admin *client.City) error {
	return eventually(r.ctx, "the dashboard shows every county's screening", func() (bool, error) {
		res, err := admin.Progress.GetProgress(r.ctx, connect.NewRequest(&wengangv1.GetProgressRequest{}))
		if err != nil {
			return false, fmt.Errorf("progress: %w", err)
		}
		shown := 0
		for _, c := range res.Msg.GetCounties() {
			s := r.summary.Counties[c.GetCounty()]
			if s != nil && int(c.GetScreenedCount()) == s.Units && int(c.GetEligible().GetCount()) == s.Eligible &&
				c.GetCountyDeadline() == wengangv1.DeadlineStatus_DEADLINE_STATUS_MET {
				shown++
			}
		}
		return shown == len(r.o.Counties), nil
	})
}

// fundAndPay confirms the funding requests, pulls the instructions and
// reports each paid; with returnOne, the first instruction comes back, and
// it is returned.
func (r *run) fundAndPay(finance *client.City, requests []*wengangv1.FundingRequest, returnOne bool) (*wengangv1.PaymentInstruction, error) {
	var back *wengangv1.PaymentInstruction
	ctx := r.ctx
	for _, f := range requests {
		if _, err := finance.Finance.ConfirmFunding(ctx, connect.NewRequest(&wengangv1.ConfirmFundingRequest{FundingRequestId: f.GetFundingRequestId(),
			Reference: "拨付-" + f.GetFundingRequestId(), ConfirmedOn: protoconv.Date(releaseDay)})); err != nil {
			return nil, fmt.Errorf("confirm funding: %w", err)
		}
	}
	stream, err := finance.Finance.PullInstructions(ctx, connect.NewRequest(&wengangv1.PullInstructionsRequest{}))
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	var results []*wengangv1.PaymentResult
	for stream.Receive() {
		for _, in := range stream.Msg().GetInstructions() {
			res := &wengangv1.PaymentResult{InstructionId: in.GetInstructionId()}
			if returnOne && back == nil {
				back = in
				res.Outcome = &wengangv1.PaymentResult_Returned{Returned: &wengangv1.ReturnedResult{Reason: "收款账户已销户", ReasonCode: "AC04", ReturnedOn: protoconv.Date(paidDay)}}
			} else {
				res.Outcome = &wengangv1.PaymentResult_Paid{Paid: &wengangv1.PaidResult{BankReference: "BK" + in.GetEndToEndId(), PaidOn: protoconv.Date(paidDay)}}
			}
			results = append(results, res)
		}
	}
	if err := stream.Err(); err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	stream.Close()
	if len(results) == 0 {
		return nil, fmt.Errorf("demo: finance pulled no instruction")
	}
	if _, err := finance.Finance.ReportResults(ctx, connect.NewRequest(&wengangv1.ReportResultsRequest{Results: results})); err != nil {
		return nil, fmt.Errorf("report results: %w", err)
	}
	if back != nil {
		r.say("finance paid %d instructions; one came back: %s (收款账户已销户)", len(results)-1, back.GetPayeeName())
	} else {
		r.say("finance paid %d instruction(s)", len(results))
	}
	return back, nil
}

// correctReturned waits until the returned payment reaches its county,
// has the county's clerk record a corrected account, and pays the
// instruction the city re-issues.
func (r *run) correctReturned(finance *client.City, back *wengangv1.PaymentInstruction) error {
	ctx := r.ctx
	county := back.GetCounty()
	clerk, err := r.node(county, access.RoleCountyClerk)
	if err != nil {
		return err
	}
	err = eventually(ctx, "the return reaches its county", func() (bool, error) {
		res, err := clerk.Batch.ListUnitStatuses(ctx, connect.NewRequest(&wengangv1.ListUnitStatusesRequest{County: county, Uscc: back.GetUscc(),
			States: []wengangv1.ItemState{wengangv1.ItemState_ITEM_STATE_RETURNED}}))
		return err == nil && len(res.Msg.GetStatuses()) > 0, err
	})
	if err != nil {
		return err
	}
	if _, err := clerk.Batch.CorrectAccount(ctx, connect.NewRequest(&wengangv1.CorrectAccountRequest{County: county, BatchId: back.GetBatchId(),
		Uscc: back.GetUscc(), Account: &wengangv1.Account{Kind: wengangv1.AccountKind_ACCOUNT_KIND_CORPORATE, Bank: "中国工商银行聊城分行",
			AccountNo: "1610008888777766665", AccountName: back.GetPayeeName()}, Reason: "企业提供新的对公账户", IdempotencyKey: client.NewKey()})); err != nil {
		return fmt.Errorf("correct account: %w", err)
	}
	r.say("%s: the clerk recorded a corrected account for %s", county, back.GetPayeeName())
	var pending []*wengangv1.FundingRequest
	err = eventually(ctx, "the city re-issues the payment", func() (bool, error) {
		res, err := finance.Finance.ListFundingRequests(ctx, connect.NewRequest(&wengangv1.ListFundingRequestsRequest{State: wengangv1.FundingState_FUNDING_STATE_REQUESTED}))
		if err != nil {
			return false, err
		}
		pending = res.Msg.GetFundingRequests()
		return len(pending) > 0, nil
	})
	if err != nil {
		return err
	}
	_, err = r.fundAndPay(finance, pending, false)
	return err
}

// reconcile reads the finance reconciliation into the summary and prints
// the per-county table.
func (r *run) reconcile(finance *client.City) error {
	res, err := finance.Finance.GetReconciliation(r.ctx, connect.NewRequest(&wengangv1.GetReconciliationRequest{}))
	if err != nil {
		return fmt.Errorf("reconciliation: %w", err)
	}
	for _, c := range res.Msg.GetCounties() {
		s := r.summary.Counties[c.GetCounty()]
		if s == nil {
			continue
		}
		s.ReleasedFen, s.PaidFen, s.ReturnedFen, s.OutstandingFen = c.GetReleased().GetAmountFen(), c.GetPaid().GetAmountFen(),
			c.GetReturned().GetAmountFen(), c.GetOutstanding().GetAmountFen()
		if !c.GetBalanced() {
			return fmt.Errorf("demo: county %s does not reconcile: released %d ≠ paid %d + returned %d + outstanding %d",
				c.GetCounty(), s.ReleasedFen, s.PaidFen, s.ReturnedFen, s.OutstandingFen)
		}
	}
	return nil
}

// PrintTable writes the per-county table of a summary.
func PrintTable(w io.Writer, s *Summary, counties []string) {
	fmt.Fprintf(w, "%-8s %7s %9s %6s %11s %16s %16s %16s %16s\n", "county", "units", "eligible", "hold", "ineligible", "eligible yuan", "released yuan", "paid yuan", "returned yuan")
	fmt.Fprintln(w, strings.Repeat("-", 112))
	for _, c := range counties {
		v := s.Counties[c]
		if v == nil {
			continue
		}
		fmt.Fprintf(w, "%-8s %7d %9d %6d %11d %16s %16s %16s %16s\n", c, v.Units, v.Eligible, v.Hold, v.Ineligible,
			yuan(v.EligibleRefundFen), yuan(v.ReleasedFen), yuan(v.PaidFen), yuan(v.ReturnedFen))
	}
}

func yuan(fen int64) string { return money.FormatYuan(fen) }

func civilDate(d *wengangv1.Date) string {
	v, err := protoconv.ToDate(d)
	if err != nil {
		return "?"
	}
	return v.String()
}
