package service

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/node/store"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
)

// Page sizes of ListUnitStatuses.
const (
	statusPageDefault = 100
	statusPageMax     = 1000
)

// ListUnitStatuses lists each batched unit's state as the city decided it:
// the node's mirror of the decisions feed, which the sync worker keeps. An
// item is PENDING until the city's first decision about it, and REJECTED
// (with the city's words) when the city refused its batch as a whole. A
// unit batched again after a rejection has a status per batch; the list is
// ordered by USCC, then batch id, and filtered by batch, states and USCC.
func (s *BatchService) ListUnitStatuses(ctx context.Context, req *connect.Request[wengangv1.ListUnitStatusesRequest]) (*connect.Response[wengangv1.ListUnitStatusesResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	f := store.UnitStatusFilter{County: m.GetCounty(), BatchID: m.GetBatchId(), USCC: uscc.Normalize(m.GetUscc())}
	size := int(m.GetPageSize())
	switch {
	case size < 0:
		bad.Add("page_size", "%d is negative", size)
	case size == 0:
		size = statusPageDefault
	case size > statusPageMax:
		size = statusPageMax
	}
	for i, st := range m.GetStates() {
		name, ok := wengangv1.ItemState_name[int32(st)]
		if !ok || st == wengangv1.ItemState_ITEM_STATE_UNSPECIFIED {
			bad.Add(fmt.Sprintf("states[%d]", i), "unknown item state %v", st)
			continue
		}
		f.States = append(f.States, strings.ToLower(strings.TrimPrefix(name, "ITEM_STATE_")))
	}
	if t := m.GetPageToken(); t != "" {
		var ok bool
		if f.AfterUSCC, f.AfterBatch, ok = statusParseToken(t); !ok {
			bad.Add("page_token", "not a page token of ListUnitStatuses")
		}
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	f.Limit = size + 1
	us, err := s.Store.ListUnitStatuses(ctx, f)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListUnitStatusesResponse{}
	if len(us) > size {
		us = us[:size]
		res.NextPageToken = statusToken(us[size-1].USCC, us[size-1].BatchID)
	}
	for _, u := range us {
		res.Statuses = append(res.Statuses, unitStatusProto(u))
	}
	return connect.NewResponse(res), nil
}

// statusToken is the page token after a unit: its USCC and batch id.
func statusToken(code, batchID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(code + "\x00" + batchID))
}

func statusParseToken(t string) (code, batchID string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	if err != nil {
		return "", "", false
	}
	code, batchID, ok = strings.Cut(string(b), "\x00")
	return code, batchID, ok && code != "" && batchID != ""
}

// CorrectAccount records a corrected account for a unit whose payment the
// bank returned (退票) and queues it for the city, which re-issues the
// payment to it; the sync worker pushes it (Kick wakes it). The unit's
// status shows the corrected account, with correction_pending set until the
// city has accepted it.
//
// Idempotent by idempotency_key, which is also the correction id the city
// sees: a repeat returns the unit's status; the key used for another
// correction is AlreadyExists. A written reason and a well-formed account
// are required, and a social-insurance account only for a small or micro
// unit (InvalidArgument); the unit must be RETURNED with no correction of
// that return already on its way (FailedPrecondition).
func (s *BatchService) CorrectAccount(ctx context.Context, req *connect.Request[wengangv1.CorrectAccountRequest]) (*connect.Response[wengangv1.CorrectAccountResponse], error) {
	m := req.Msg
	if err := s.serves(m.GetCounty()); err != nil {
		return nil, err
	}
	var bad rpc.Fields
	code := uscc.Normalize(m.GetUscc())
	if m.GetBatchId() == "" {
		bad.Add("batch_id", "required")
	}
	if code == "" {
		bad.Add("uscc", "required")
	}
	if m.GetIdempotencyKey() == "" {
		bad.Add("idempotency_key", "required")
	}
	reason := strings.TrimSpace(m.GetReason())
	if reason == "" {
		bad.Add("reason", "a written reason is required (必须填写更正理由)")
	}
	acct := statusAccount(&bad, "account", code, m.GetAccount())
	if err := bad.Err(); err != nil {
		return nil, err
	}
	u, err := s.Store.GetUnitStatus(ctx, m.GetCounty(), m.GetBatchId(), code)
	if err != nil {
		return nil, err
	}
	if acct.Kind == refund.AccountSocialInsurance && u.Size != refund.SizeSmall && u.Size != refund.SizeMicro {
		bad.Add("account.kind", "a social-insurance account is for small and micro units only; this unit is %q (社保缴费账户仅限小微企业)", u.Size)
		return nil, bad.Err()
	}
	who := caller(ctx)
	st, err := s.Store.CorrectAccount(ctx, who, store.AccountCorrection{
		County: m.GetCounty(), ID: m.GetIdempotencyKey(), BatchID: m.GetBatchId(), USCC: code,
		Account: acct, Reason: reason, CorrectedBy: who.Subject,
	}, s.Now())
	if err != nil {
		return nil, err
	}
	if s.Kick != nil {
		s.Kick()
	}
	return connect.NewResponse(&wengangv1.CorrectAccountResponse{Status: unitStatusProto(st)}), nil
}

// statusAccount reads a corrected account, adding what is wrong with it to
// bad: a kind, an account number of letters, digits and hyphens, a
// 12-digit CNAPS code when one is given, and the holder's name.
func statusAccount(bad *rpc.Fields, field, code string, a *wengangv1.Account) refund.Account {
	if a == nil {
		bad.Add(field, "required")
		return refund.Account{}
	}
	acct, err := protoconv.ToAccount(code, a)
	if err != nil {
		bad.Add(field, "%v", err)
		return refund.Account{}
	}
	if n := acct.AccountNo; len(n) > 64 || strings.Trim(n, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-") != "" {
		bad.Add(field+".account_no", "%q is not an account number (账号无效)", n)
	}
	if c := acct.BankCode; c != "" && (len(c) != 12 || strings.Trim(c, "0123456789") != "") {
		bad.Add(field+".bank_code", "%q is not a 12-digit CNAPS code (联行号应为12位数字)", c)
	}
	if strings.TrimSpace(acct.AccountName) == "" {
		bad.Add(field+".account_name", "required (户名必填)")
	}
	return acct
}

// unitStatusProto returns a unit status as it goes on the wire.
func unitStatusProto(u store.UnitStatus) *wengangv1.UnitStatus {
	out := &wengangv1.UnitStatus{
		County: u.County, Uscc: u.USCC, Name: u.Name, BatchId: u.BatchID,
		ScreeningId:       fmt.Sprint(u.ScreeningID),
		RefundFen:         u.RefundFen,
		State:             protoconv.ItemState(u.State),
		Reason:            u.Reason,
		RoundId:           u.RoundID,
		PublicityStart:    protoconv.Date(u.PublicityStart),
		PublicityEnd:      protoconv.Date(u.PublicityEnd),
		InstructionId:     u.InstructionID,
		BankReference:     u.BankReference,
		SettledOn:         protoconv.Date(u.SettledOn),
		Payee:             protoconv.Account(u.Payee),
		CorrectionPending: u.CorrectionPending,
		DecisionSequence:  u.DecisionSequence,
		UpdatedAt:         timestamppb.New(u.UpdatedAt),
	}
	if u.LastDecision != "" {
		out.LastDecision = protoconv.DecisionKind(string(u.LastDecision))
	}
	for _, r := range u.Rejections {
		rj := &wengangv1.Rejection{Code: protoconv.RejectionCode(r.Code), Detail: r.Detail}
		for _, why := range r.Reasons {
			rj.Reasons = append(rj.Reasons, wengangv1.Reason(wengangv1.Reason_value["REASON_"+why]))
		}
		out.Rejections = append(out.Rejections, rj)
	}
	return out
}
