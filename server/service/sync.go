package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/store"
)

// Pull limits of PullDecisions (wengang.v1.PullDecisionsRequest.limit).
const (
	defaultPull = 500
	maxPull     = store.MaxPull
)

// PushBatch stores a county's batch exactly once and re-checks each item;
// see wengang.v1.SyncService.PushBatch.
func (s *SyncService) PushBatch(ctx context.Context, req *connect.Request[wengangv1.PushBatchRequest]) (*connect.Response[wengangv1.PushBatchResponse], error) {
	p, err := node(ctx)
	if err != nil {
		return nil, err
	}
	bc := req.Msg.GetBatch()
	if bc == nil || bc.GetCounty() == "" {
		var f rpc.Fields
		f.Add("batch.county", "required")
		return nil, f.Err()
	}
	if err := actsFor(p, bc.GetCounty()); err != nil {
		return nil, err
	}
	params, perr := s.params(bc.GetPolicyId())
	known := perr == nil
	content, asOf, err := checkBatch(req.Msg, params, known)
	if err != nil {
		return nil, err
	}
	b := store.Batch{
		County: bc.GetCounty(), ID: bc.GetBatchId(), ContentHash: req.Msg.GetContentHash(), Content: content,
		ScreeningID: bc.GetScreeningId(), DatasetHash: bc.GetDatasetHash(), PolicyID: bc.GetPolicyId(), PolicyYear: int(bc.GetPolicyYear()),
		AsOf: asOf, ItemCount: bc.GetItemCount(), TotalFen: bc.GetTotalFen(), SealedBy: bc.GetSealedBy(),
		Items: make([]store.Item, len(bc.GetItems())),
	}
	if bc.GetSealedAt() != nil {
		b.SealedAt = bc.GetSealedAt().AsTime()
	}
	for i, it := range bc.GetItems() {
		b.Items[i] = recheck(params, known, bc, asOf, it)
	}
	rc, err := s.Store.ReceiveBatch(ctx, p, b, s.Now())
	if err != nil {
		return nil, err
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "batch pushed", slog.String("county", b.County), slog.String("batch", b.ID),
		slog.Bool("replay", rc.Replay), slog.Int64("received", rc.Received.Count), slog.Int64("rejected", rc.Rejected.Count),
		slog.Int64("conflict", rc.Conflict.Count), slog.String("node", p.Subject))
	return connect.NewResponse(&wengangv1.PushBatchResponse{
		BatchId: rc.BatchID, ContentHash: rc.ContentHash, ReceivedAt: timestamppb.New(rc.ReceivedAt),
		Received: protoconv.Tally(rc.Received.Count, rc.Received.AmountFen),
		Rejected: protoconv.Tally(rc.Rejected.Count, rc.Rejected.AmountFen),
		Conflict: protoconv.Tally(rc.Conflict.Count, rc.Conflict.AmountFen),
	}), nil
}

// params looks up policy parameters.
func (s *SyncService) params(id string) (refund.Params, error) {
	if s.Params != nil {
		return s.Params(id)
	}
	return refund.LoadParams(id)
}

// checkBatch checks what makes a push malformed as a whole, naming every
// bad field, and returns the batch's deterministic encoding and as-of date.
// The content hash must be the hex SHA-256 of that encoding.
func checkBatch(m *wengangv1.PushBatchRequest, p refund.Params, known bool) ([]byte, civil.Date, error) {
	var f rpc.Fields
	bc := m.GetBatch()
	county, id := bc.GetCounty(), bc.GetBatchId()
	if suffix, ok := strings.CutPrefix(id, county+"-"); !ok || suffix == "" || len(id) > 100 {
		f.Add("batch.batch_id", "%q is not the county code, a hyphen and a suffix, such as %s-000017 (批次号格式错误)", id, county)
	}
	asOf, err := protoconv.ToDate(bc.GetAsOf())
	if err != nil || asOf == 0 {
		f.Add("batch.as_of", "a real date is required")
	}
	if bc.GetPolicyId() == "" {
		f.Add("batch.policy_id", "required")
	}
	if known && int(bc.GetPolicyYear()) != p.PolicyYear {
		f.Add("batch.policy_year", "%d is not the policy year %d of %s", bc.GetPolicyYear(), p.PolicyYear, p.ID)
	}
	if bc.GetPolicyYear() < civil.MinYear || bc.GetPolicyYear() > civil.MaxYear {
		f.Add("batch.policy_year", "%d out of range", bc.GetPolicyYear())
	}
	items := bc.GetItems()
	if len(items) == 0 {
		f.Add("batch.items", "a batch has at least one item")
	}
	if bc.GetItemCount() != int64(len(items)) {
		f.Add("batch.item_count", "%d, but the batch has %d items", bc.GetItemCount(), len(items))
	}
	var total int64
	seen := make(map[string]int, len(items))
	for i, it := range items {
		if j, dup := seen[it.GetUscc()]; dup {
			f.Add(fmt.Sprintf("batch.items[%d].uscc", i), "%q is also item %d: each USCC once (同一企业重复)", it.GetUscc(), j)
		}
		seen[it.GetUscc()] = i
		if r := it.GetRefundFen(); r < 0 || r > maxFen {
			f.Add(fmt.Sprintf("batch.items[%d].refund_fen", i), "%d out of range", r)
		} else {
			total += r
		}
	}
	if total != bc.GetTotalFen() {
		f.Add("batch.total_fen", "%d, but the items' refunds add up to %d", bc.GetTotalFen(), total)
	}
	content, err := deterministic.Marshal(bc)
	if err != nil {
		return nil, 0, fmt.Errorf("encode batch: %w", err)
	}
	sum := sha256.Sum256(content)
	if got := hex.EncodeToString(sum[:]); m.GetContentHash() != got {
		f.Add("content_hash", "%q does not match the content, whose hash is %s (内容校验值不符)", m.GetContentHash(), got)
	}
	return content, asOf, f.Err()
}

// PullDecisions returns the decisions feed after a cursor; see
// wengang.v1.SyncService.PullDecisions.
func (s *SyncService) PullDecisions(ctx context.Context, req *connect.Request[wengangv1.PullDecisionsRequest]) (*connect.Response[wengangv1.PullDecisionsResponse], error) {
	p, err := node(ctx)
	if err != nil {
		return nil, err
	}
	counties := req.Msg.GetCounties()
	if len(counties) == 0 {
		counties = p.Counties
	}
	counties = slices.Compact(slices.Sorted(slices.Values(counties)))
	for _, c := range counties {
		if err := actsFor(p, c); err != nil {
			return nil, err
		}
	}
	limit := int(req.Msg.GetLimit())
	switch {
	case limit < 0:
		var f rpc.Fields
		f.Add("limit", "%d is negative", limit)
		return nil, f.Err()
	case limit == 0:
		limit = defaultPull
	case limit > maxPull:
		limit = maxPull
	}
	after, err := parseCursor(req.Msg.GetCursor())
	if err != nil {
		return nil, err
	}
	ds, more, err := s.Store.PullDecisions(ctx, counties, after, limit)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.PullDecisionsResponse{NextCursor: req.Msg.GetCursor(), More: more}
	if len(ds) > 0 {
		for _, d := range ds {
			res.Decisions = append(res.Decisions, decisionMessage(d))
			after[d.County] = max(after[d.County], d.Seq)
		}
		res.NextCursor = formatCursor(after)
	}
	return connect.NewResponse(res), nil
}

// decisionMessage returns d as it goes on the wire.
func decisionMessage(d store.Decision) *wengangv1.CityDecision {
	return &wengangv1.CityDecision{
		Sequence: d.Seq, County: d.County, BatchId: d.BatchID, Uscc: d.USCC,
		Kind:           protoconv.DecisionKind(string(d.Kind)),
		Reason:         d.Reason,
		Rejections:     rejectionMessages(d.Rejections),
		ConflictId:     d.ConflictID,
		RoundId:        d.RoundID,
		PublicityStart: protoconv.Date(d.PublicityStart),
		PublicityEnd:   protoconv.Date(d.PublicityEnd),
		AmountFen:      d.AmountFen,
		InstructionId:  d.InstructionID,
		BankReference:  d.BankReference,
		SettledOn:      protoconv.Date(d.SettledOn),
		OccurredAt:     timestamppb.New(d.OccurredAt),
	}
}

func rejectionMessages(rs []store.Rejection) []*wengangv1.Rejection {
	var out []*wengangv1.Rejection
	for _, r := range rs {
		m := &wengangv1.Rejection{
			Code:   protoconv.RejectionCode(string(r.Code)),
			Detail: r.Detail,
		}
		for _, reason := range r.Reasons {
			m.Reasons = append(m.Reasons, wengangv1.Reason(wengangv1.Reason_value["REASON_"+reason]))
		}
		out = append(out, m)
	}
	return out
}

// PushAccountCorrection stores a corrected account for a returned payment;
// see wengang.v1.SyncService.PushAccountCorrection.
func (s *SyncService) PushAccountCorrection(ctx context.Context, req *connect.Request[wengangv1.PushAccountCorrectionRequest]) (*connect.Response[wengangv1.PushAccountCorrectionResponse], error) {
	p, err := node(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	var f rpc.Fields
	if m.GetCounty() == "" {
		f.Add("county", "required")
		return nil, f.Err()
	}
	if err := actsFor(p, m.GetCounty()); err != nil {
		return nil, err
	}
	for _, r := range []struct{ field, v string }{{"correction_id", m.GetCorrectionId()}, {"batch_id", m.GetBatchId()}, {"uscc", m.GetUscc()}} {
		if r.v == "" {
			f.Add(r.field, "required")
		}
	}
	account := checkAccount(&f, "account", m.GetUscc(), m.GetAccount())
	if err := f.Err(); err != nil {
		return nil, err
	}
	c, err := s.Store.AcceptCorrection(ctx, p, store.Correction{
		County: m.GetCounty(), ID: m.GetCorrectionId(), BatchID: m.GetBatchId(), USCC: m.GetUscc(),
		Account: account, Reason: m.GetReason(), CorrectedBy: m.GetCorrectedBy(),
	}, s.Now())
	if err != nil {
		return nil, err
	}
	if !c.Reissued {
		// Re-issue the returned payment to the corrected account at once
		// (idempotent: a retry finds the correction re-issued).
		if c, err = s.Store.Reissue(ctx, p, c.County, c.ID, s.Now()); err != nil {
			return nil, err
		}
	}
	return connect.NewResponse(&wengangv1.PushAccountCorrectionResponse{
		CorrectionId: c.ID, InstructionId: c.InstructionID, AcceptedAt: timestamppb.New(c.AcceptedAt),
	}), nil
}

// checkAccount reads a corrected account, adding what is wrong with it to f.
func checkAccount(f *rpc.Fields, field, uscc string, a *wengangv1.Account) refund.Account {
	if a == nil {
		f.Add(field, "required")
		return refund.Account{}
	}
	acct, err := protoconv.ToAccount(uscc, a)
	if err != nil {
		f.Add(field, "%v", err)
		return refund.Account{}
	}
	if !accountNumber(acct.AccountNo) {
		f.Add(field+".account_no", "%q is not an account number (账号无效)", acct.AccountNo)
	}
	if c := acct.BankCode; c != "" && (len(c) != 12 || strings.Trim(c, "0123456789") != "") {
		f.Add(field+".bank_code", "%q is not a 12-digit CNAPS code (联行号应为12位数字)", c)
	}
	if strings.TrimSpace(acct.AccountName) == "" {
		f.Add(field+".account_name", "required (户名必填)")
	}
	return acct
}

// ReportScreening keeps a county screening's tallies; see
// wengang.v1.SyncService.ReportScreening.
func (s *SyncService) ReportScreening(ctx context.Context, req *connect.Request[wengangv1.ReportScreeningRequest]) (*connect.Response[wengangv1.ReportScreeningResponse], error) {
	p, err := node(ctx)
	if err != nil {
		return nil, err
	}
	r := req.Msg.GetReport()
	var f rpc.Fields
	if r.GetCounty() == "" {
		f.Add("report.county", "required")
		return nil, f.Err()
	}
	if err := actsFor(p, r.GetCounty()); err != nil {
		return nil, err
	}
	if r.GetScreeningId() == "" {
		f.Add("report.screening_id", "required")
	}
	if r.GetRevision() <= 0 {
		f.Add("report.revision", "%d is not positive", r.GetRevision())
	}
	asOf, err := protoconv.ToDate(r.GetAsOf())
	if err != nil {
		f.Add("report.as_of", "%v", err)
	}
	screened := decisionTally(&f, "report.screened", r.GetScreened())
	reviewed := decisionTally(&f, "report.reviewed", r.GetReviewed())
	if err := f.Err(); err != nil {
		return nil, err
	}
	rep := store.ScreeningReport{
		County: r.GetCounty(), ScreeningID: r.GetScreeningId(), DatasetHash: r.GetDatasetHash(), AsOf: asOf, PolicyID: r.GetPolicyId(),
		Screened: screened, Reviewed: reviewed, Revision: r.GetRevision(),
	}
	if r.GetRunAt() != nil {
		rep.RunAt = r.GetRunAt().AsTime()
	}
	held, err := s.Store.ReportScreening(ctx, p, rep, s.Now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.ReportScreeningResponse{Revision: held}), nil
}

// decisionTally reads a tally, adding negative figures to f.
func decisionTally(f *rpc.Fields, field string, t *wengangv1.DecisionTally) store.DecisionTally {
	out := store.DecisionTally{
		Units:      t.GetUnitCount(),
		Eligible:   store.Tally{Count: t.GetEligible().GetCount(), AmountFen: t.GetEligible().GetAmountFen()},
		Hold:       store.Tally{Count: t.GetHold().GetCount(), AmountFen: t.GetHold().GetAmountFen()},
		Ineligible: store.Tally{Count: t.GetIneligible().GetCount(), AmountFen: t.GetIneligible().GetAmountFen()},
	}
	for _, v := range []int64{out.Units, out.Eligible.Count, out.Eligible.AmountFen, out.Hold.Count, out.Hold.AmountFen, out.Ineligible.Count, out.Ineligible.AmountFen} {
		if v < 0 {
			f.Add(field, "counts and amounts must not be negative")
			break
		}
	}
	if sum := out.Eligible.Count + out.Hold.Count + out.Ineligible.Count; sum != out.Units && t != nil {
		f.Add(field+".unit_count", "%d, but the decisions add up to %d", out.Units, sum)
	}
	return out
}

var _ wengangv1connect.SyncServiceHandler = (*SyncService)(nil)
