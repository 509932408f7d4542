package service

import (
	"context"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/access"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/store"
)

// caller returns the calling person (or finance system): fault.ErrUnauthenticated
// when the request carries no principal.
func caller(ctx context.Context) (access.Principal, error) {
	p, ok := access.PrincipalFrom(ctx)
	if !ok {
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "no authenticated caller (未认证)")
	}
	return p, nil
}

// readable returns the counties a request may read: those asked for, each
// of which a county-domain caller must own; empty (every county) for city
// roles asking for none; the caller's own county for a county role asking
// for none.
func readable(ctx context.Context, asked []string) ([]string, error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if p.Domain == access.DomainCity || p.Domain == "" && p.Kind != access.KindNode {
		return asked, nil
	}
	own := p.Counties
	if p.Domain != "" {
		own = []string{p.Domain}
	}
	if len(asked) == 0 {
		return own, nil
	}
	for _, c := range asked {
		if !slices.Contains(own, c) {
			return nil, fault.New(fault.ErrPermissionDenied, "county %s is not yours to read (无权查看该县)", c)
		}
	}
	return asked, nil
}

// listSize returns a request's page size: def when unset, at most max.
func listSize(f *rpc.Fields, n int32, def, max int) int {
	switch {
	case n == 0:
		return def
	case n < 0 || int(n) > max:
		f.Add("page_size", "must be 1 to %d", max)
		return def
	}
	return int(n)
}

// itemState is an item state on the wire.
func itemState(s store.ItemState) wengangv1.ItemState {
	return protoconv.ItemState(string(s))
}

// toItemStates reads item states of a request; UNSPECIFIED or unknown
// values are bad fields.
func toItemStates(f *rpc.Fields, field string, ss []wengangv1.ItemState) []store.ItemState {
	var out []store.ItemState
	for _, s := range ss {
		name, ok := wengangv1.ItemState_name[int32(s)]
		if !ok || s == wengangv1.ItemState_ITEM_STATE_UNSPECIFIED {
			f.Add(field, "unknown item state %d", s)
			continue
		}
		out = append(out, store.ItemState(strings.ToLower(strings.TrimPrefix(name, "ITEM_STATE_"))))
	}
	return out
}

// stateTallies lists per-state tallies in state order, non-empty states only.
func stateTallies(m map[store.ItemState]store.Tally) []*wengangv1.ItemStateTally {
	var out []*wengangv1.ItemStateTally
	for s := wengangv1.ItemState(1); ; s++ {
		name, ok := wengangv1.ItemState_name[int32(s)]
		if !ok {
			return out
		}
		if t, ok := m[store.ItemState(strings.ToLower(strings.TrimPrefix(name, "ITEM_STATE_")))]; ok && t.Count > 0 {
			out = append(out, &wengangv1.ItemStateTally{State: s, Tally: protoconv.Tally(t.Count, t.AmountFen)})
		}
	}
}

// ListReceivedBatches lists received batches, newest first; see
// wengang.v1.IntakeService.ListReceivedBatches.
func (s *IntakeService) ListReceivedBatches(ctx context.Context, req *connect.Request[wengangv1.ListReceivedBatchesRequest]) (*connect.Response[wengangv1.ListReceivedBatchesResponse], error) {
	counties, err := readable(ctx, req.Msg.GetCounties())
	if err != nil {
		return nil, err
	}
	var f rpc.Fields
	n := listSize(&f, req.Msg.GetPageSize(), 50, 1000)
	if err := f.Err(); err != nil {
		return nil, err
	}
	bs, next, err := s.Store.ListBatches(ctx, store.BatchFilter{Counties: counties, Limit: n, After: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &wengangv1.ListReceivedBatchesResponse{NextPageToken: next}
	for _, b := range bs {
		out.Batches = append(out.Batches, batchMessage(b))
	}
	return connect.NewResponse(out), nil
}

func batchMessage(b store.BatchSummary) *wengangv1.ReceivedBatch {
	m := &wengangv1.ReceivedBatch{
		BatchId: b.ID, County: b.County, ContentHash: b.ContentHash, ScreeningId: b.ScreeningID, PolicyId: b.PolicyID,
		PolicyYear: int32(b.PolicyYear), AsOf: protoconv.Date(b.AsOf), ItemCount: b.ItemCount, TotalFen: b.TotalFen,
		ReceivedAt: timestamppb.New(b.Receipt.ReceivedAt), ItemsByState: stateTallies(b.ByState),
	}
	if !b.SealedAt.IsZero() {
		m.SealedAt = timestamppb.New(b.SealedAt)
	}
	return m
}

// GetReceivedBatch returns one received batch; see
// wengang.v1.IntakeService.GetReceivedBatch.
func (s *IntakeService) GetReceivedBatch(ctx context.Context, req *connect.Request[wengangv1.GetReceivedBatchRequest]) (*connect.Response[wengangv1.GetReceivedBatchResponse], error) {
	var f rpc.Fields
	if req.Msg.GetCounty() == "" {
		f.Add("county", "required")
	}
	if req.Msg.GetBatchId() == "" {
		f.Add("batch_id", "required")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if _, err := readable(ctx, []string{req.Msg.GetCounty()}); err != nil {
		return nil, err
	}
	b, err := s.Store.GetBatchSummary(ctx, req.Msg.GetCounty(), req.Msg.GetBatchId())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.GetReceivedBatchResponse{Batch: batchMessage(b)}), nil
}

// ListReceivedItems lists received items with their states and
// rejections; see wengang.v1.IntakeService.ListReceivedItems.
func (s *IntakeService) ListReceivedItems(ctx context.Context, req *connect.Request[wengangv1.ListReceivedItemsRequest]) (*connect.Response[wengangv1.ListReceivedItemsResponse], error) {
	counties, err := readable(ctx, req.Msg.GetCounties())
	if err != nil {
		return nil, err
	}
	var f rpc.Fields
	n := listSize(&f, req.Msg.GetPageSize(), 100, 1000)
	states := toItemStates(&f, "states", req.Msg.GetStates())
	if err := f.Err(); err != nil {
		return nil, err
	}
	items, next, err := s.Store.ListItems(ctx, store.ItemFilter{Counties: counties, BatchID: req.Msg.GetBatchId(), States: states,
		USCC: req.Msg.GetUscc(), Limit: n, After: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &wengangv1.ListReceivedItemsResponse{NextPageToken: next}
	for _, it := range items {
		var bi wengangv1.BatchItem
		if err := proto.Unmarshal(it.Encoded, &bi); err != nil {
			return nil, fault.New(fault.ErrFailedPrecondition, "stored item %s of batch %s of county %s does not decode: %v", it.USCC, it.BatchID, it.County, err)
		}
		if !req.Msg.GetWithContributions() {
			bi.Contributions = nil
		}
		out.Items = append(out.Items, &wengangv1.ReceivedItem{
			BatchId: it.BatchID, Item: &bi, State: itemState(it.State), RecomputedRefundFen: it.RecomputedRefundFen,
			Rejections: rejectionMessages(it.Rejections), ConflictId: it.ConflictID, RoundId: it.RoundID,
			InstructionId: it.InstructionID, UpdatedAt: timestamppb.New(it.UpdatedAt),
		})
	}
	return connect.NewResponse(out), nil
}

// ListConflicts lists cross-county conflicts, oldest first; see
// wengang.v1.IntakeService.ListConflicts.
func (s *IntakeService) ListConflicts(ctx context.Context, req *connect.Request[wengangv1.ListConflictsRequest]) (*connect.Response[wengangv1.ListConflictsResponse], error) {
	counties, err := readable(ctx, req.Msg.GetCounties())
	if err != nil {
		return nil, err
	}
	var f rpc.Fields
	n := listSize(&f, req.Msg.GetPageSize(), 100, 1000)
	var open *bool
	switch req.Msg.GetState() {
	case wengangv1.ConflictState_CONFLICT_STATE_UNSPECIFIED:
	case wengangv1.ConflictState_CONFLICT_STATE_OPEN:
		open = new(true)
	case wengangv1.ConflictState_CONFLICT_STATE_RESOLVED:
		open = new(false)
	default:
		f.Add("state", "unknown conflict state %d", req.Msg.GetState())
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	cs, next, err := s.Store.ListConflicts(ctx, store.ConflictFilter{Open: open, Counties: counties, Limit: n, After: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &wengangv1.ListConflictsResponse{NextPageToken: next}
	for _, c := range cs {
		out.Conflicts = append(out.Conflicts, conflictMessage(c))
	}
	return connect.NewResponse(out), nil
}

func conflictMessage(c store.ConflictView) *wengangv1.Conflict {
	m := &wengangv1.Conflict{ConflictId: c.ID, Uscc: c.USCC, State: wengangv1.ConflictState_CONFLICT_STATE_OPEN,
		KeptCounty: c.KeptCounty, KeptBatchId: c.KeptBatchID, Reason: c.Reason, ResolvedBy: c.ResolvedBy, CreatedAt: timestamppb.New(c.CreatedAt)}
	if !c.Open {
		m.State, m.ResolvedAt = wengangv1.ConflictState_CONFLICT_STATE_RESOLVED, timestamppb.New(c.ResolvedAt)
	}
	for _, p := range c.Items {
		m.Parties = append(m.Parties, &wengangv1.ConflictParty{County: p.County, BatchId: p.BatchID, Name: p.Name, RefundFen: p.RefundFen, ReceivedAt: timestamppb.New(p.ReceivedAt)})
	}
	return m
}

// ResolveConflict keeps one county's item of a conflict and rejects the
// others as duplicates; see wengang.v1.IntakeService.ResolveConflict.
func (s *IntakeService) ResolveConflict(ctx context.Context, req *connect.Request[wengangv1.ResolveConflictRequest]) (*connect.Response[wengangv1.ResolveConflictResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	var f rpc.Fields
	m := req.Msg
	if m.GetConflictId() == "" {
		f.Add("conflict_id", "required")
	}
	if m.GetKeepCounty() == "" {
		f.Add("keep_county", "required")
	}
	if m.GetKeepBatchId() == "" {
		f.Add("keep_batch_id", "required")
	}
	if strings.TrimSpace(m.GetReason()) == "" {
		f.Add("reason", "a written reason is required (须填写理由)")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	c, err := s.Store.ResolveConflict(ctx, p, m.GetConflictId(), m.GetKeepCounty(), m.GetKeepBatchId(), strings.TrimSpace(m.GetReason()), s.Now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.ResolveConflictResponse{Conflict: conflictMessage(c)}), nil
}
