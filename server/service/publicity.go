package service

import (
	"context"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/civil"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/store"
)

// CreateRound builds a draft publicity round; see
// wengang.v1.PublicityService.CreateRound.
func (s *PublicityService) CreateRound(ctx context.Context, req *connect.Request[wengangv1.CreateRoundRequest]) (*connect.Response[wengangv1.CreateRoundResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	var f rpc.Fields
	if m.GetIdempotencyKey() == "" {
		f.Add("idempotency_key", "required")
	}
	if strings.TrimSpace(m.GetTitle()) == "" {
		f.Add("title", "required")
	}
	if len(m.GetBatches()) == 0 {
		f.Add("batches", "at least one batch is required")
	}
	var refs []store.BatchRef
	for i, b := range m.GetBatches() {
		if b.GetCounty() == "" || b.GetBatchId() == "" {
			f.Add("batches", "batch %d: county and batch_id are required", i)
			continue
		}
		refs = append(refs, store.BatchRef{County: b.GetCounty(), BatchID: b.GetBatchId()})
	}
	start, err := protoconv.ToDate(m.GetStartDate())
	if err != nil || start == 0 {
		f.Add("start_date", "a valid date is required")
	}
	c := m.GetObjectionContact()
	if c.GetOffice() == "" || c.GetPhone() == "" {
		f.Add("objection_contact", "office and phone are required (异议受理科室和电话必填)")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	today := s.Today()
	if start < today {
		return nil, fault.New(fault.ErrFailedPrecondition, "start date %s is before the business date %s (公示开始日早于当前业务日期)", start, today)
	}
	batch, err := s.Store.GetBatch(ctx, refs[0].County, refs[0].BatchID)
	if err != nil {
		return nil, err
	}
	params, err := s.Params(batch.PolicyID)
	if err != nil {
		return nil, fault.New(fault.ErrFailedPrecondition, "batch %s of county %s names policy %s, which the city does not know: %v", batch.ID, batch.County, batch.PolicyID, err)
	}
	// A non-working start day starts the publicity on the next working day.
	first, err := s.Calendar.NthWorkday(start, 1)
	if err != nil {
		return nil, fault.New(fault.ErrFailedPrecondition, "start date %s: %v (日历未载入该年度)", start, err)
	}
	end, err := s.Calendar.NthWorkday(first, params.PublicityWorkdays)
	if err != nil {
		return nil, fault.New(fault.ErrFailedPrecondition, "start date %s: %v (日历未载入该年度)", start, err)
	}
	r, err := s.Store.CreateRound(ctx, p, store.NewRound{
		Title: strings.TrimSpace(m.GetTitle()), Batches: refs, Start: first, End: end, Workdays: params.PublicityWorkdays,
		Contact:        store.Contact{Office: c.GetOffice(), Phone: c.GetPhone(), Address: c.GetAddress(), Email: c.GetEmail()},
		IdempotencyKey: m.GetIdempotencyKey(),
	}, today, s.Now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.CreateRoundResponse{Round: roundMessage(r)}), nil
}

// roundState is a round state on the wire.
func roundState(s store.RoundState) wengangv1.RoundState {
	return wengangv1.RoundState(wengangv1.RoundState_value["ROUND_STATE_"+strings.ToUpper(string(s))])
}

func optStamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func roundMessage(r store.Round) *wengangv1.Round {
	m := &wengangv1.Round{
		RoundId: r.ID, Title: r.Title, PolicyYear: int32(r.PolicyYear), Counties: r.Counties,
		StartDate: protoconv.Date(r.Start), EndDate: protoconv.Date(r.End), Workdays: int32(r.Workdays), State: roundState(r.State),
		ObjectionContact: &wengangv1.ObjectionContact{Office: r.Contact.Office, Phone: r.Contact.Phone, Address: r.Contact.Address, Email: r.Contact.Email},
		EntryCount:       r.Entries.Count, TotalFen: r.Entries.AmountFen, EntriesByState: stateTallies(r.ByState), OpenObjectionCount: r.OpenObjections,
		BuiltBy: r.BuiltBy, BuiltAt: optStamp(r.BuiltAt), ApprovedBy: r.ApprovedBy, ApprovedAt: optStamp(r.ApprovedAt),
		ReleasedBy: r.ReleasedBy, ReleasedAt: optStamp(r.ReleasedAt),
	}
	for _, b := range r.Batches {
		m.Batches = append(m.Batches, &wengangv1.BatchRef{County: b.County, BatchId: b.BatchID})
	}
	return m
}

// roundID checks a request's round id.
func roundID(id string) error {
	if id == "" {
		var f rpc.Fields
		f.Add("round_id", "required")
		return f.Err()
	}
	return nil
}

// ApproveRound approves a draft round for publication, never by its
// builder; see wengang.v1.PublicityService.ApproveRound.
func (s *PublicityService) ApproveRound(ctx context.Context, req *connect.Request[wengangv1.ApproveRoundRequest]) (*connect.Response[wengangv1.ApproveRoundResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := roundID(req.Msg.GetRoundId()); err != nil {
		return nil, err
	}
	r, err := s.Store.ApproveRound(ctx, p, req.Msg.GetRoundId(), req.Msg.GetComment(), s.Today(), s.Now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.ApproveRoundResponse{Round: roundMessage(r)}), nil
}

// GetRound returns one round as of the business date; see
// wengang.v1.PublicityService.GetRound.
func (s *PublicityService) GetRound(ctx context.Context, req *connect.Request[wengangv1.GetRoundRequest]) (*connect.Response[wengangv1.GetRoundResponse], error) {
	if err := roundID(req.Msg.GetRoundId()); err != nil {
		return nil, err
	}
	r, err := s.Store.GetRound(ctx, req.Msg.GetRoundId(), s.Today())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.GetRoundResponse{Round: roundMessage(r)}), nil
}

// ListRounds lists rounds, newest start date first; see
// wengang.v1.PublicityService.ListRounds.
func (s *PublicityService) ListRounds(ctx context.Context, req *connect.Request[wengangv1.ListRoundsRequest]) (*connect.Response[wengangv1.ListRoundsResponse], error) {
	counties, err := readable(ctx, req.Msg.GetCounties())
	if err != nil {
		return nil, err
	}
	var f rpc.Fields
	n := listSize(&f, req.Msg.GetPageSize(), 50, 1000)
	var states []store.RoundState
	for _, st := range req.Msg.GetStates() {
		name, ok := wengangv1.RoundState_name[int32(st)]
		if !ok || st == wengangv1.RoundState_ROUND_STATE_UNSPECIFIED {
			f.Add("states", "unknown round state %d", st)
			continue
		}
		states = append(states, store.RoundState(strings.ToLower(strings.TrimPrefix(name, "ROUND_STATE_"))))
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	rs, next, err := s.Store.ListRounds(ctx, store.RoundFilter{States: states, Counties: counties, Today: s.Today(), Limit: n, After: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &wengangv1.ListRoundsResponse{NextPageToken: next}
	for _, r := range rs {
		out.Rounds = append(out.Rounds, roundMessage(r))
	}
	return connect.NewResponse(out), nil
}

// ListRoundEntries lists a round's enterprises with their states and
// accounts; see wengang.v1.PublicityService.ListRoundEntries.
func (s *PublicityService) ListRoundEntries(ctx context.Context, req *connect.Request[wengangv1.ListRoundEntriesRequest]) (*connect.Response[wengangv1.ListRoundEntriesResponse], error) {
	if err := roundID(req.Msg.GetRoundId()); err != nil {
		return nil, err
	}
	var f rpc.Fields
	n := listSize(&f, req.Msg.GetPageSize(), 100, 1000)
	states := toItemStates(&f, "states", req.Msg.GetStates())
	if err := f.Err(); err != nil {
		return nil, err
	}
	es, next, err := s.Store.ListEntries(ctx, store.EntryFilter{RoundID: req.Msg.GetRoundId(), States: states, Query: strings.TrimSpace(req.Msg.GetQuery()),
		Limit: n, After: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &wengangv1.ListRoundEntriesResponse{NextPageToken: next}
	for _, e := range es {
		kind := wengangv1.AccountKind(wengangv1.AccountKind_value["ACCOUNT_KIND_"+strings.ToUpper(e.Payee.Kind)])
		out.Entries = append(out.Entries, &wengangv1.RoundEntry{
			RoundId: e.RoundID, County: e.County, BatchId: e.BatchID, Uscc: e.USCC, Name: e.Name, AmountFen: e.AmountFen,
			State: itemState(e.State), ObjectionId: e.ObjectionID, InstructionId: e.InstructionID,
			Payee: &wengangv1.Account{Kind: kind, Bank: e.Payee.Bank, BankCode: e.Payee.BankCode, AccountNo: e.Payee.AccountNo, AccountName: e.Payee.AccountName},
		})
	}
	return connect.NewResponse(out), nil
}

// storeChannel is a wire channel as the store names it.
func storeChannel(c wengangv1.ResponseChannel) (string, bool) {
	name, ok := wengangv1.ResponseChannel_name[int32(c)]
	if !ok || c == wengangv1.ResponseChannel_RESPONSE_CHANNEL_UNSPECIFIED {
		return "", false
	}
	return strings.ToLower(strings.TrimPrefix(name, "RESPONSE_CHANNEL_")), true
}

func objectionState(s string) wengangv1.ObjectionState {
	return wengangv1.ObjectionState(wengangv1.ObjectionState_value["OBJECTION_STATE_"+strings.ToUpper(s)])
}

func objectionMessage(o store.Objection) *wengangv1.Objection {
	ch := wengangv1.ResponseChannel(wengangv1.ResponseChannel_value["RESPONSE_CHANNEL_"+strings.ToUpper(o.Channel)])
	recorded := o.RecordedBy
	if o.Channel == "portal" && recorded == "portal" {
		recorded = ""
	}
	return &wengangv1.Objection{
		ObjectionId: o.ID, RoundId: o.RoundID, County: o.County, Uscc: o.USCC, Name: o.Name, ContactName: o.ContactName,
		ContactPhone: o.ContactPhone, Text: o.Text, Channel: ch, State: objectionState(o.State), RecordedBy: recorded,
		ReceivedAt: optStamp(o.ReceivedAt), ResolutionReason: o.ResolutionReason, ResolvedBy: o.ResolvedBy, ResolvedAt: optStamp(o.ResolvedAt),
	}
}

// RecordObjection records an objection raised with staff during publicity;
// see wengang.v1.PublicityService.RecordObjection.
func (s *PublicityService) RecordObjection(ctx context.Context, req *connect.Request[wengangv1.RecordObjectionRequest]) (*connect.Response[wengangv1.RecordObjectionResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	var f rpc.Fields
	if m.GetRoundId() == "" {
		f.Add("round_id", "required")
	}
	if m.GetUscc() == "" {
		f.Add("uscc", "required")
	}
	if strings.TrimSpace(m.GetText()) == "" {
		f.Add("text", "required (异议内容必填)")
	}
	if m.GetIdempotencyKey() == "" {
		f.Add("idempotency_key", "required")
	}
	ch := "other"
	if m.GetChannel() != wengangv1.ResponseChannel_RESPONSE_CHANNEL_UNSPECIFIED {
		var ok bool
		if ch, ok = storeChannel(m.GetChannel()); !ok {
			f.Add("channel", "unknown channel %d", m.GetChannel())
		}
	}
	at := s.Now()
	if m.GetReceivedAt() != nil {
		if err := m.GetReceivedAt().CheckValid(); err != nil {
			f.Add("received_at", "%v", err)
		} else {
			at = m.GetReceivedAt().AsTime()
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if m.GetReceivedAt() != nil {
		// A time given must fall within the round's publicity.
		r, err := s.Store.GetRound(ctx, m.GetRoundId(), s.Today())
		if err != nil {
			return nil, err
		}
		if on := civil.DateOf(at.In(civil.Shanghai)); on > r.End {
			return nil, fault.New(fault.ErrFailedPrecondition, "the objection was received on %s, after the publicity of round %s ended on %s (超过公示期)", on, r.ID, r.End)
		}
	}
	by := p.Name
	if by == "" {
		by = p.Subject
	}
	o, err := s.Store.RecordObjection(ctx, store.NewObjection{
		RoundID: m.GetRoundId(), USCC: m.GetUscc(), ContactName: m.GetContactName(), ContactPhone: m.GetContactPhone(),
		Text: strings.TrimSpace(m.GetText()), Channel: ch, RecordedBy: by, ReceivedAt: at, IdempotencyKey: m.GetIdempotencyKey(), Today: s.Today(),
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.RecordObjectionResponse{Objection: objectionMessage(o)}), nil
}

// ListObjections lists objections, oldest first; see
// wengang.v1.PublicityService.ListObjections.
func (s *PublicityService) ListObjections(ctx context.Context, req *connect.Request[wengangv1.ListObjectionsRequest]) (*connect.Response[wengangv1.ListObjectionsResponse], error) {
	var f rpc.Fields
	n := listSize(&f, req.Msg.GetPageSize(), 100, 1000)
	state := ""
	if st := req.Msg.GetState(); st != wengangv1.ObjectionState_OBJECTION_STATE_UNSPECIFIED {
		name, ok := wengangv1.ObjectionState_name[int32(st)]
		if !ok {
			f.Add("state", "unknown objection state %d", st)
		}
		state = strings.ToLower(strings.TrimPrefix(name, "OBJECTION_STATE_"))
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	os, next, err := s.Store.ListObjections(ctx, store.ObjectionFilter{RoundID: req.Msg.GetRoundId(), State: state, Limit: n, After: req.Msg.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &wengangv1.ListObjectionsResponse{NextPageToken: next}
	for _, o := range os {
		out.Objections = append(out.Objections, objectionMessage(o))
	}
	return connect.NewResponse(out), nil
}

// ResolveObjection settles an objection: upheld removes the enterprise,
// dismissed puts it back; see wengang.v1.PublicityService.ResolveObjection.
func (s *PublicityService) ResolveObjection(ctx context.Context, req *connect.Request[wengangv1.PublicityServiceResolveObjectionRequest]) (*connect.Response[wengangv1.PublicityServiceResolveObjectionResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	var f rpc.Fields
	if m.GetObjectionId() == "" {
		f.Add("objection_id", "required")
	}
	var resolution string
	switch m.GetResolution() {
	case wengangv1.ObjectionState_OBJECTION_STATE_UPHELD:
		resolution = store.ObjectionUpheld
	case wengangv1.ObjectionState_OBJECTION_STATE_DISMISSED:
		resolution = store.ObjectionDismissed
	default:
		f.Add("resolution", "must be OBJECTION_STATE_UPHELD or OBJECTION_STATE_DISMISSED")
	}
	if strings.TrimSpace(m.GetReason()) == "" {
		f.Add("reason", "a written reason is required (须填写理由)")
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	o, err := s.Store.ResolveObjection(ctx, p, m.GetObjectionId(), resolution, strings.TrimSpace(m.GetReason()), s.Now())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.PublicityServiceResolveObjectionResponse{Objection: objectionMessage(o)}), nil
}

// ReleaseRound releases an ended round for payment; see
// wengang.v1.PublicityService.ReleaseRound.
func (s *PublicityService) ReleaseRound(ctx context.Context, req *connect.Request[wengangv1.ReleaseRoundRequest]) (*connect.Response[wengangv1.ReleaseRoundResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := roundID(req.Msg.GetRoundId()); err != nil {
		return nil, err
	}
	rel, err := s.Store.ReleaseRound(ctx, p, req.Msg.GetRoundId(), s.Today(), s.Now())
	if err != nil {
		return nil, err
	}
	if rel.New.Count > 0 {
		s.Log.InfoContext(ctx, "round released", "round", rel.Round.ID, "instructions", rel.New.Count, "total_fen", rel.New.AmountFen, "by", p.Subject)
	}
	out := &wengangv1.ReleaseRoundResponse{
		Round:    roundMessage(rel.Round),
		Released: protoconv.Tally(rel.Released.Count, rel.Released.AmountFen),
		Waiting:  protoconv.Tally(rel.Waiting.Count, rel.Waiting.AmountFen),
	}
	for _, fr := range rel.FundingRequests {
		st := wengangv1.FundingState_FUNDING_STATE_REQUESTED
		if fr.State == "confirmed" {
			st = wengangv1.FundingState_FUNDING_STATE_CONFIRMED
		}
		var on *wengangv1.Date
		if fr.ConfirmedOn != civil.Date(0) {
			on = protoconv.Date(fr.ConfirmedOn)
		}
		out.FundingRequests = append(out.FundingRequests, &wengangv1.FundingRequest{
			FundingRequestId: fr.ID, RoundId: fr.RoundID, County: fr.County, InstructionCount: fr.InstructionCount, TotalFen: fr.TotalFen,
			State: st, RequestedAt: optStamp(fr.RequestedAt), Reference: fr.Reference, ConfirmedOn: on, ConfirmedBy: fr.ConfirmedBy, ConfirmedAt: optStamp(fr.ConfirmedAt),
		})
	}
	return connect.NewResponse(out), nil
}
