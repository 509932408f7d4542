package service

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/node/store"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
)

// SealBatch seals the screening's units to be paid into one immutable
// batch (上报批次) and puts it in the outbox for the sync worker, which Kick
// wakes. A unit is sealed when its current decision is eligible, it has a
// refund and a payee account its size allows, its USCC passes the check (or
// a reviewer verified or corrected it), it has no open or upheld objection
// and it is in no live batch of the policy year. The others are counted in
// the answer: objected, already batched, held. Listing units seals only
// those, and each must qualify. Nothing to seal is FailedPrecondition.
//
// The batch's content is a wengang.v1.BatchContent with, for each item, the
// evidence the city re-checks (the unit's facts and its monthly
// contributions up to the policy's months_through, as they stood at the
// as-of date), encoded deterministically; its content hash is the hex
// SHA-256 of those bytes. A repeat of the idempotency key returns the first
// batch and answer.
func (s *BatchService) SealBatch(ctx context.Context, req *connect.Request[wengangv1.SealBatchRequest]) (*connect.Response[wengangv1.SealBatchResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	id := noticeScreeningID(&bad, m.GetScreeningId())
	usccs := noticeUSCCs(&bad, "usccs", m.GetUsccs())
	if m.GetIdempotencyKey() == "" {
		bad.Add("idempotency_key", "required")
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	// What the key is used for: the screening and the set of units.
	slices.Sort(usccs)
	fp := noticeDigest(&wengangv1.SealBatchRequest{County: m.GetCounty(), ScreeningId: strconv.FormatInt(id, 10), Usccs: usccs})
	b, replayed, err := s.Store.SealBatch(ctx, m.GetCounty(), store.SealRequest{
		ScreeningID:    id,
		USCCs:          usccs,
		IdempotencyKey: m.GetIdempotencyKey(),
		RequestSHA256:  fp,
		SealedBy:       caller(ctx),
		SealedAt:       s.Now().UTC().Truncate(time.Microsecond), // what the database keeps
	}, func(ctx context.Context, in *store.SealInput) (store.SealOutput, error) {
		return sealContent(ctx, in, len(usccs) > 0)
	})
	if err != nil {
		return nil, err
	}
	if !replayed && s.Kick != nil {
		s.Kick()
	}
	return connect.NewResponse(&wengangv1.SealBatchResponse{
		Batch:               batchProto(b),
		ObjectedCount:       b.ObjectedCount,
		AlreadyBatchedCount: b.AlreadyBatchedCount,
		HoldCount:           b.HoldCount,
	}), nil
}

// sealWhyNot says why unit u is not to be paid now ("" when it is), and
// whether because it is ineligible (which the answer does not count).
func sealWhyNot(u *store.SealUnit) (why string, ineligible bool) {
	switch {
	case u.Decision == refund.Ineligible:
		return "ineligible", true
	case u.LiveBatchID != "":
		return "already in batch " + u.LiveBatchID, false
	case u.Objection != "":
		return "objection " + string(u.Objection), false
	case u.Decision == refund.Hold:
		return "held: " + u.Reasons.String(), false
	case u.RefundFen <= 0:
		return "held: no refund", false
	case u.Payee.Kind == 0 || u.Payee.AccountNo == "":
		return "held: no payee account", false
	case u.Payee.Kind == refund.AccountSocialInsurance && u.Size != refund.SizeSmall && u.Size != refund.SizeMicro:
		return "held: a social-insurance account is for small and micro units only", false
	}
	if st, err := uscc.Check(u.BatchUSCC()); err != nil || (st != uscc.Valid && !u.USCCVerified) {
		return "held: the USCC's check character is wrong and no reviewer verified it", false
	}
	return "", false
}

// sealContent decides which of in.Units are sealed and builds the batch.
// With listed, every unit must qualify.
func sealContent(ctx context.Context, in *store.SealInput, listed bool) (store.SealOutput, error) {
	var (
		out     store.SealOutput
		take    []*store.SealUnit
		refused []string
	)
	for i := range in.Units {
		u := &in.Units[i]
		why, ineligible := sealWhyNot(u)
		switch {
		case why == "":
			take = append(take, u)
			continue
		case ineligible:
		case u.LiveBatchID != "":
			out.AlreadyBatchedCount++
		case u.Objection != "":
			out.ObjectedCount++
		default:
			out.HoldCount++
		}
		if listed {
			refused = append(refused, u.USCC+" ("+why+")")
		}
	}
	if len(refused) > 0 {
		return store.SealOutput{}, fault.New(fault.ErrFailedPrecondition, "listed units may not be sealed (不可上报): %s", strings.Join(refused, "; "))
	}
	if len(take) == 0 {
		return store.SealOutput{}, fault.New(fault.ErrFailedPrecondition,
			"nothing to seal (无可上报单位): screening %d has no eligible unit left to pay — %d already in a live batch, %d with an open or upheld objection, %d held",
			in.Screening.ID, out.AlreadyBatchedCount, out.ObjectedCount, out.HoldCount)
	}

	keys := make([]string, len(take))
	for i, u := range take {
		keys[i] = u.USCC
	}
	months, err := in.Contributions(ctx, keys)
	if err != nil {
		return store.SealOutput{}, err
	}
	slices.SortFunc(take, func(a, b *store.SealUnit) int { return cmp.Compare(a.BatchUSCC(), b.BatchUSCC()) })
	f := &in.Screening
	content := &wengangv1.BatchContent{
		BatchId:     in.BatchID,
		County:      f.County,
		ScreeningId: strconv.FormatInt(f.ID, 10),
		DatasetHash: f.DatasetHash,
		AsOf:        protoconv.Date(f.AsOf),
		PolicyId:    f.PolicyID,
		PolicyYear:  int32(f.Policy.PolicyYear),
		SealedAt:    timestamppb.New(in.SealedAt),
		SealedBy:    in.SealedBy.Subject,
		ItemCount:   int64(len(take)),
	}
	for i, u := range take {
		if i > 0 && take[i-1].BatchUSCC() == u.BatchUSCC() {
			return store.SealOutput{}, fault.New(fault.ErrFailedPrecondition,
				"units %s and %s are both recorded as %s: correct one of them before sealing", take[i-1].USCC, u.USCC, u.BatchUSCC())
		}
		item := &wengangv1.BatchItem{
			Uscc:               u.BatchUSCC(),
			Name:               u.Name,
			County:             u.UnitCounty,
			Industry:           u.Industry,
			SizeClass:          protoconv.Size(u.Size),
			RegistrationStatus: protoconv.Status(u.Status),
			HeadcountStart:     u.HeadcountStart,
			HeadcountEnd:       u.HeadcountEnd,
			MonthsPaid:         u.MonthsPaid,
			BaseFen:            u.BaseFen,
			RefundFen:          u.RefundFen,
			Payee:              protoconv.Account(u.Payee),
			UsccVerified:       u.USCCVerified,
		}
		for _, ms := range months[u.USCC] {
			item.Contributions = append(item.Contributions, &wengangv1.MonthlyContribution{
				Period:          protoconv.Month(ms.Period),
				RowCount:        ms.Rows,
				UnpaidRowCount:  ms.UnpaidRows,
				PaidEmployerFen: ms.PaidEmployerFen,
				PaidEmployeeFen: ms.PaidEmployeeFen,
				UnpaidFen:       ms.UnpaidFen,
				LastPaidOn:      protoconv.Date(ms.LastPaidOn),
			})
		}
		if o := u.Override; o != nil {
			item.Override = &wengangv1.ReviewOverride{
				ReviewId: o.ReviewID, Reason: o.Reason, Reviewer: o.Reviewer, WaivedReasons: protoconv.Reasons(o.Waived),
			}
		}
		content.Items = append(content.Items, item)
		content.TotalFen += u.RefundFen
		out.Items = append(out.Items, store.SealedItem{USCC: u.BatchUSCC(), Name: u.Name, RefundFen: u.RefundFen})
	}
	out.TotalFen = content.TotalFen
	out.Content, err = proto.MarshalOptions{Deterministic: true}.Marshal(content)
	if err != nil {
		return store.SealOutput{}, fmt.Errorf("encode batch content: %w", err)
	}
	out.ContentHash = BatchContentHash(out.Content)
	out.Detail = fmt.Sprintf("screening %d: %d unit(s), %d fen, content %s; left out: %d already batched, %d objected, %d held",
		f.ID, len(out.Items), out.TotalFen, out.ContentHash, out.AlreadyBatchedCount, out.ObjectedCount, out.HoldCount)
	return out, nil
}

// BatchContentHash is the content hash of a batch: the lowercase hex
// SHA-256 of its content's deterministic encoding.
func BatchContentHash(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// GetBatch returns one batch with its delivery state and item tallies.
func (s *BatchService) GetBatch(ctx context.Context, req *connect.Request[wengangv1.GetBatchRequest]) (*connect.Response[wengangv1.GetBatchResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	if m.GetBatchId() == "" {
		var bad rpc.Fields
		bad.Add("batch_id", "required")
		return nil, bad.Err()
	}
	b, err := s.Store.GetBatch(ctx, m.GetCounty(), m.GetBatchId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.GetBatchResponse{Batch: batchProto(b)}), nil
}

// ListBatches lists a county's batches, newest first.
func (s *BatchService) ListBatches(ctx context.Context, req *connect.Request[wengangv1.ListBatchesRequest]) (*connect.Response[wengangv1.ListBatchesResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	f := store.BatchFilter{Limit: noticePageSize(&bad, m.GetPageSize(), 50)}
	if m.GetState() != wengangv1.BatchState_BATCH_STATE_UNSPECIFIED {
		var ok bool
		if f.State, ok = batchStates[m.GetState()]; !ok {
			bad.Add("state", "unknown batch state %v", m.GetState())
		}
	}
	if t := m.GetPageToken(); t != "" {
		if !strings.HasPrefix(t, m.GetCounty()+"-B") {
			bad.Add("page_token", "not a page token of ListBatches")
		}
		f.BeforeID = t
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	limit := f.Limit
	f.Limit++
	bs, err := s.Store.ListBatches(ctx, m.GetCounty(), f)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListBatchesResponse{}
	if len(bs) > limit {
		bs = bs[:limit]
		res.NextPageToken = bs[limit-1].ID
	}
	for _, b := range bs {
		res.Batches = append(res.Batches, batchProto(b))
	}
	return connect.NewResponse(res), nil
}

var batchStates = map[wengangv1.BatchState]store.BatchState{
	wengangv1.BatchState_BATCH_STATE_SEALED:    store.BatchSealed,
	wengangv1.BatchState_BATCH_STATE_DELIVERED: store.BatchDelivered,
	wengangv1.BatchState_BATCH_STATE_REFUSED:   store.BatchRefused,
}

func batchProto(b store.Batch) *wengangv1.Batch {
	out := &wengangv1.Batch{
		BatchId:       b.ID,
		County:        b.County,
		ScreeningId:   strconv.FormatInt(b.ScreeningID, 10),
		PolicyYear:    int32(b.PolicyYear),
		ContentHash:   b.ContentHash,
		ItemCount:     b.ItemCount,
		TotalFen:      b.TotalFen,
		State:         noticeEnum(batchStates, b.State),
		SealedAt:      noticeTime(b.SealedAt),
		SealedBy:      b.SealedBy,
		PushAttempts:  int32(b.PushAttempts),
		LastPushError: b.LastPushError,
		DeliveredAt:   noticeTime(b.DeliveredAt),
	}
	for _, t := range b.ItemsByState {
		out.ItemsByState = append(out.ItemsByState, &wengangv1.ItemStateTally{
			State: protoconv.ItemState(t.State),
			Tally: protoconv.Tally(t.Count, t.AmountFen),
		})
	}
	return out
}
