package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/fault"
	"wengang/internal/iso20022"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/internal/source"
	"wengang/policy/access"
	"wengang/policy/civil"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
	"wengang/server/store"
)

// The paying side of every pain.001: the city's unemployment insurance
// fund (聊城市失业保险基金) and the party that initiates the transfers.
const (
	DebtorName      = "聊城市失业保险基金"
	DebtorAccountNo = "1611002109000088888"
	DebtorBank      = "中国工商银行聊城分行"
	DebtorBankCode  = "102466000018"
	Initiator       = "聊城市人力资源和社会保障局"
)

// Limits of the finance service's requests.
const (
	defaultInstructionPage = 500
	defaultListPage        = 100
	defaultFundingPage     = 100
	maxIDs                 = 5000
	// MaxPain002Bytes bounds a status report ImportPain002 takes.
	MaxPain002Bytes = 32 << 20
	// exportChunk is the size of the chunks ExportPain001 streams.
	exportChunk = 64 << 10
)

// financeCaller returns the authenticated caller (fault.ErrUnauthenticated when
// none) and the counties it may see: want, or when want is empty all of
// them (nil) for a city-wide caller, its own domain otherwise.
func financeCaller(ctx context.Context, want []string) (access.Principal, []string, error) {
	p, ok := access.PrincipalFrom(ctx)
	if !ok {
		return access.Principal{}, nil, fault.New(fault.ErrUnauthenticated, "no authenticated caller (未认证)")
	}
	if len(want) > 0 {
		return p, slices.Compact(slices.Sorted(slices.Values(want))), nil
	}
	if p.Domain != "" && p.Domain != access.DomainCity {
		return p, []string{p.Domain}, nil
	}
	return p, nil, nil
}

// financePage reads a requested page size: def when 0, at most limit.
func financePage(field string, n int32, def, limit int) (int, error) {
	switch {
	case n < 0:
		var f rpc.Fields
		f.Add(field, "%d is negative", n)
		return 0, f.Err()
	case n == 0:
		return def, nil
	}
	return min(int(n), limit), nil
}

// pullCursor is a position in the finance feed. On the wire it is the
// unpadded URL-safe base64 of {"v":1,"pull":N}; it stays valid for ever and
// for any set of counties.
type pullCursor struct {
	V    int   `json:"v"`
	Pull int64 `json:"pull"`
}

func formatPullCursor(pos int64) string {
	b, _ := json.Marshal(pullCursor{V: cursorVersion, Pull: pos})
	return base64.RawURLEncoding.EncodeToString(b)
}

// parsePullCursor reads a cursor ("" is the beginning); one this server
// could not have issued, positions beyond head included, is fault.ErrInvalid.
func parsePullCursor(s string, head func() (int64, error)) (int64, error) {
	if s == "" {
		return 0, nil
	}
	bad := fault.New(fault.ErrInvalid, "cursor: not a cursor this server issued (游标无效)")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, bad
	}
	var c pullCursor
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.V != cursorVersion || c.Pull < 0 {
		return 0, bad
	}
	last, err := head()
	if err != nil {
		return 0, err
	}
	if c.Pull > last {
		return 0, bad
	}
	return c.Pull, nil
}

// financeToken is a page token of ListInstructions and ListFundingRequests.
func financeToken(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func parseFinanceToken(field, s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		var f rpc.Fields
		f.Add(field, "not a page token this server issued (分页标记无效)")
		return f.Err()
	}
	return nil
}

// PullInstructions streams the pullable, outstanding instructions after a
// cursor, page by page, each message with the cursor after its last
// instruction; see wengang.v1.FinanceService.PullInstructions.
func (s *FinanceService) PullInstructions(ctx context.Context, req *connect.Request[wengangv1.PullInstructionsRequest], stream *connect.ServerStream[wengangv1.PullInstructionsResponse]) error {
	_, counties, err := financeCaller(ctx, req.Msg.GetCounties())
	if err != nil {
		return err
	}
	size, err := financePage("page_size", req.Msg.GetPageSize(), defaultInstructionPage, store.MaxInstructionPage)
	if err != nil {
		return err
	}
	after, err := parsePullCursor(req.Msg.GetCursor(), func() (int64, error) { return s.Store.PullHead(ctx) })
	if err != nil {
		return err
	}
	sent := 0
	for {
		is, err := s.Store.PullInstructions(ctx, counties, after, size)
		if err != nil {
			return err
		}
		if len(is) == 0 {
			break
		}
		res := &wengangv1.PullInstructionsResponse{Instructions: make([]*wengangv1.PaymentInstruction, len(is))}
		for n, i := range is {
			res.Instructions[n] = instructionMessage(i)
		}
		after = is[len(is)-1].PullSeq
		res.Cursor = formatPullCursor(after)
		if err := stream.Send(res); err != nil {
			return err
		}
		sent += len(is)
		if len(is) < size {
			break
		}
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "instructions pulled", slog.Int("count", sent), slog.Int64("cursor", after))
	return nil
}

// ListInstructions lists instructions, paged; see
// wengang.v1.FinanceService.ListInstructions.
func (s *FinanceService) ListInstructions(ctx context.Context, req *connect.Request[wengangv1.ListInstructionsRequest]) (*connect.Response[wengangv1.ListInstructionsResponse], error) {
	m := req.Msg
	_, counties, err := financeCaller(ctx, m.GetCounties())
	if err != nil {
		return nil, err
	}
	size, err := financePage("page_size", m.GetPageSize(), defaultListPage, store.MaxInstructionPage)
	if err != nil {
		return nil, err
	}
	var after int64
	if t := m.GetPageToken(); t != "" {
		if err := parseFinanceToken("page_token", t, &after); err != nil {
			return nil, err
		}
	}
	f := store.InstructionFilter{Counties: counties, RoundID: m.GetRoundId(), USCC: m.GetUscc()}
	var bad rpc.Fields
	for n, st := range m.GetStates() {
		ps, ok := paymentState(st)
		if !ok {
			bad.Add(fmt.Sprintf("states[%d]", n), "%v is not a payment state", st)
		}
		f.States = append(f.States, ps)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	is, next, err := s.Store.ListInstructions(ctx, f, after, size)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListInstructionsResponse{}
	for _, i := range is {
		res.Instructions = append(res.Instructions, instructionMessage(i))
	}
	if next != 0 {
		res.NextPageToken = financeToken(next)
	}
	return connect.NewResponse(res), nil
}

// AckInstructions acknowledges instructions; see
// wengang.v1.FinanceService.AckInstructions.
func (s *FinanceService) AckInstructions(ctx context.Context, req *connect.Request[wengangv1.AckInstructionsRequest]) (*connect.Response[wengangv1.AckInstructionsResponse], error) {
	p, _, err := financeCaller(ctx, nil)
	if err != nil {
		return nil, err
	}
	ids := req.Msg.GetInstructionIds()
	if err := financeIDs("instruction_ids", ids); err != nil {
		return nil, err
	}
	is, err := s.Store.AckInstructions(ctx, p, ids, s.Now())
	if err != nil {
		return nil, err
	}
	res := &wengangv1.AckInstructionsResponse{}
	for _, i := range is {
		res.Instructions = append(res.Instructions, instructionMessage(i))
	}
	return connect.NewResponse(res), nil
}

// financeIDs checks a list of ids: at least one, at most maxIDs, none empty.
func financeIDs(field string, ids []string) error {
	var f rpc.Fields
	switch {
	case len(ids) == 0:
		f.Add(field, "at least one is required")
	case len(ids) > maxIDs:
		f.Add(field, "%d, at most %d at a time", len(ids), maxIDs)
	}
	for n, id := range ids {
		if id == "" {
			f.Add(fmt.Sprintf("%s[%d]", field, n), "empty")
		}
	}
	return f.Err()
}

// ReportResults records payment results; see
// wengang.v1.FinanceService.ReportResults.
func (s *FinanceService) ReportResults(ctx context.Context, req *connect.Request[wengangv1.ReportResultsRequest]) (*connect.Response[wengangv1.ReportResultsResponse], error) {
	p, _, err := financeCaller(ctx, nil)
	if err != nil {
		return nil, err
	}
	rs := req.Msg.GetResults()
	var f rpc.Fields
	if len(rs) == 0 {
		f.Add("results", "at least one is required")
	}
	if len(rs) > maxIDs {
		f.Add("results", "%d, at most %d at a time", len(rs), maxIDs)
	}
	results := make([]store.Result, len(rs))
	seen := make(map[string]int, len(rs))
	for n, r := range rs {
		field := fmt.Sprintf("results[%d]", n)
		out := store.Result{InstructionID: r.GetInstructionId()}
		if out.InstructionID == "" {
			f.Add(field+".instruction_id", "required")
		} else if m, dup := seen[out.InstructionID]; dup {
			f.Add(field+".instruction_id", "%s is also results[%d]: each instruction at most once", out.InstructionID, m)
		}
		seen[out.InstructionID] = n
		switch o := r.GetOutcome().(type) {
		case *wengangv1.PaymentResult_Paid:
			out.Paid, out.BankReference = true, o.Paid.GetBankReference()
			if out.BankReference == "" {
				f.Add(field+".paid.bank_reference", "required (须填银行流水号)")
			}
			out.On = financeDate(&f, field+".paid.paid_on", o.Paid.GetPaidOn())
		case *wengangv1.PaymentResult_Returned:
			out.Reason, out.ReasonCode, out.BankReference = o.Returned.GetReason(), o.Returned.GetReasonCode(), o.Returned.GetBankReference()
			if out.Reason == "" && out.ReasonCode == "" {
				f.Add(field+".returned.reason", "required (须填退票原因)")
			}
			out.On = financeDate(&f, field+".returned.returned_on", o.Returned.GetReturnedOn())
		default:
			f.Add(field+".outcome", "paid or returned is required")
		}
		results[n] = out
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	is, _, err := s.Store.ReportResults(ctx, p, results, s.Now())
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ReportResultsResponse{}
	for _, i := range is {
		res.Instructions = append(res.Instructions, instructionMessage(i))
	}
	return connect.NewResponse(res), nil
}

// financeDate reads a required date field, adding what is wrong to f.
func financeDate(f *rpc.Fields, field string, d *wengangv1.Date) civil.Date {
	v, err := protoconv.ToDate(d)
	switch {
	case err != nil:
		f.Add(field, "%v", err)
	case v == 0:
		f.Add(field, "required")
	}
	return v
}

// ListFundingRequests lists funding requests, oldest first; see
// wengang.v1.FinanceService.ListFundingRequests.
func (s *FinanceService) ListFundingRequests(ctx context.Context, req *connect.Request[wengangv1.ListFundingRequestsRequest]) (*connect.Response[wengangv1.ListFundingRequestsResponse], error) {
	m := req.Msg
	_, counties, err := financeCaller(ctx, m.GetCounties())
	if err != nil {
		return nil, err
	}
	size, err := financePage("page_size", m.GetPageSize(), defaultFundingPage, store.MaxFundingPage)
	if err != nil {
		return nil, err
	}
	var after store.FundingPosition
	if t := m.GetPageToken(); t != "" {
		if err := parseFinanceToken("page_token", t, &after); err != nil {
			return nil, err
		}
	}
	f := store.FundingFilter{Counties: counties, RoundID: m.GetRoundId()}
	switch m.GetState() {
	case wengangv1.FundingState_FUNDING_STATE_UNSPECIFIED:
	case wengangv1.FundingState_FUNDING_STATE_REQUESTED:
		f.State = "requested"
	case wengangv1.FundingState_FUNDING_STATE_CONFIRMED:
		f.State = "confirmed"
	default:
		var bad rpc.Fields
		bad.Add("state", "%v is not a funding state", m.GetState())
		return nil, bad.Err()
	}
	fs, next, err := s.Store.ListFundingRequests(ctx, f, after, size)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListFundingRequestsResponse{}
	for _, fr := range fs {
		res.FundingRequests = append(res.FundingRequests, fundingMessage(fr))
	}
	if next.ID != "" {
		res.NextPageToken = financeToken(next)
	}
	return connect.NewResponse(res), nil
}

// ConfirmFunding confirms a funding request (资金拨付); see
// wengang.v1.FinanceService.ConfirmFunding.
func (s *FinanceService) ConfirmFunding(ctx context.Context, req *connect.Request[wengangv1.ConfirmFundingRequest]) (*connect.Response[wengangv1.ConfirmFundingResponse], error) {
	p, _, err := financeCaller(ctx, nil)
	if err != nil {
		return nil, err
	}
	m := req.Msg
	var f rpc.Fields
	if m.GetFundingRequestId() == "" {
		f.Add("funding_request_id", "required")
	}
	if strings.TrimSpace(m.GetReference()) == "" {
		f.Add("reference", "required (须填拨付凭证号)")
	}
	on, err := protoconv.ToDate(m.GetConfirmedOn())
	if err != nil {
		f.Add("confirmed_on", "%v", err)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	if on == 0 {
		on = s.Today()
	}
	fr, err := s.Store.ConfirmFunding(ctx, p, m.GetFundingRequestId(), strings.TrimSpace(m.GetReference()), on, s.Now())
	if err != nil {
		return nil, err
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "funding confirmed", slog.String("funding_request", fr.ID), slog.String("county", fr.County),
		slog.Int64("count", fr.InstructionCount), slog.Int64("total_fen", fr.TotalFen), slog.String("by", p.Subject))
	return connect.NewResponse(&wengangv1.ConfirmFundingResponse{FundingRequest: fundingMessage(fr)}), nil
}

// GetReconciliation totals instructions per county; see
// wengang.v1.FinanceService.GetReconciliation.
func (s *FinanceService) GetReconciliation(ctx context.Context, req *connect.Request[wengangv1.GetReconciliationRequest]) (*connect.Response[wengangv1.GetReconciliationResponse], error) {
	m := req.Msg
	_, counties, err := financeCaller(ctx, m.GetCounties())
	if err != nil {
		return nil, err
	}
	per, total, err := s.Store.Reconcile(ctx, store.ReconcileFilter{Counties: counties, RoundID: m.GetRoundId(), PolicyYear: int(m.GetPolicyYear())})
	if err != nil {
		return nil, err
	}
	res := &wengangv1.GetReconciliationResponse{Total: reconciliationMessage(total), AsOf: protoconv.Date(s.Today())}
	for _, r := range per {
		res.Counties = append(res.Counties, reconciliationMessage(r))
	}
	return connect.NewResponse(res), nil
}

// ExportPain001 streams outstanding instructions as a pain.001.001.09
// document; see wengang.v1.FinanceService.ExportPain001.
func (s *FinanceService) ExportPain001(ctx context.Context, req *connect.Request[wengangv1.ExportPain001Request], stream *connect.ServerStream[wengangv1.ExportPain001Response]) error {
	p, _, err := financeCaller(ctx, nil)
	if err != nil {
		return err
	}
	m := req.Msg
	var f rpc.Fields
	switch {
	case m.GetFundingRequestId() == "" && len(m.GetInstructionIds()) == 0:
		f.Add("funding_request_id", "a funding request or instruction ids are required")
	case m.GetFundingRequestId() != "" && len(m.GetInstructionIds()) > 0:
		f.Add("instruction_ids", "not with a funding request: one selection only")
	case len(m.GetInstructionIds()) > 0:
		if err := financeIDs("instruction_ids", m.GetInstructionIds()); err != nil {
			return err
		}
	}
	if len([]rune(m.GetMessageId())) > 35 {
		f.Add("message_id", "at most 35 characters (ISO 20022 Max35Text)")
	}
	if err := f.Err(); err != nil {
		return err
	}
	is, latest, err := s.Store.ExportSelection(ctx, m.GetFundingRequestId(), m.GetInstructionIds())
	if err != nil {
		return err
	}
	msgID := m.GetMessageId()
	if msgID == "" {
		msgID = selectionID(m.GetFundingRequestId(), m.GetInstructionIds())
	}
	doc := pain001(msgID, is, latest)
	w := &chunkWriter{send: func(b []byte, first bool) error {
		res := &wengangv1.ExportPain001Response{Chunk: b}
		if first {
			res.ContentType, res.FileName = "application/xml", msgID+".xml"
		}
		return stream.Send(res)
	}}
	if err := iso20022.WritePain001(w, doc); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "pain.001 exported", slog.String("message_id", msgID), slog.Int("count", len(is)), slog.String("by", p.Subject))
	return nil
}

// selectionID is the message id of a selection without one: the funding
// request's id when it fits, else "WG" and a hash of the selection.
func selectionID(funding string, ids []string) string {
	if funding != "" && len(funding) <= 35 {
		return funding
	}
	h := sha256.New()
	h.Write([]byte(funding))
	for _, id := range slices.Sorted(slices.Values(ids)) {
		h.Write([]byte{0})
		h.Write([]byte(id))
	}
	return "WG" + strings.ToUpper(hex.EncodeToString(h.Sum(nil))[:32])
}

// pain001 builds the document of instructions is (in county order): one
// payment information block per county, dated by the latest confirmation
// of their funding, so the same selection gives the same bytes.
func pain001(msgID string, is []store.Instruction, latest store.FundingRequest) iso20022.Pain001 {
	doc := iso20022.Pain001{MsgID: msgID, CreatedAt: latest.ConfirmedAt.In(civil.Shanghai), Initiator: Initiator}
	debtor := iso20022.Party{Name: DebtorName, AccountNo: DebtorAccountNo, Bank: DebtorBank, BankCode: DebtorBankCode}
	slices.SortStableFunc(is, func(a, b store.Instruction) int { return strings.Compare(a.County, b.County) })
	county := ""
	for _, i := range is {
		if len(doc.Payments) == 0 || i.County != county {
			county = i.County
			id := msgID
			if len(id)+1+len(i.County) > 35 {
				id = id[:35-1-len(i.County)]
			}
			doc.Payments = append(doc.Payments, iso20022.Payment{ID: id + "-" + i.County, ExecutionDate: latest.ConfirmedOn, Debtor: debtor})
		}
		p := &doc.Payments[len(doc.Payments)-1]
		p.Transactions = append(p.Transactions, iso20022.Transaction{
			EndToEndID: i.EndToEndID, AmountFen: i.AmountFen, Purpose: i.Purpose,
			Creditor: iso20022.Party{Name: i.Payee.AccountName, AccountNo: i.Payee.AccountNo, Bank: i.Payee.Bank, BankCode: i.Payee.BankCode},
		})
	}
	return doc
}

// chunkWriter sends what is written to it in chunks of exportChunk bytes.
type chunkWriter struct {
	buf  []byte
	sent bool
	send func(b []byte, first bool) error
}

func (w *chunkWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for len(w.buf) >= exportChunk {
		if err := w.send(w.buf[:exportChunk:exportChunk], !w.sent); err != nil {
			return 0, err
		}
		w.sent = true
		w.buf = append([]byte(nil), w.buf[exportChunk:]...)
	}
	return len(b), nil
}

func (w *chunkWriter) flush() error {
	if len(w.buf) == 0 && w.sent {
		return nil
	}
	err := w.send(w.buf, !w.sent)
	w.buf, w.sent = nil, true
	return err
}

// ImportPain002 applies a bank's payment status report; see
// wengang.v1.FinanceService.ImportPain002.
func (s *FinanceService) ImportPain002(ctx context.Context, stream *connect.ClientStream[wengangv1.ImportPain002Request]) (*connect.Response[wengangv1.ImportPain002Response], error) {
	p, _, err := financeCaller(ctx, nil)
	if err != nil {
		return nil, err
	}
	var (
		doc  bytes.Buffer
		name string
	)
	for first := true; stream.Receive(); first = false {
		if first {
			name = stream.Msg().GetFileName()
		}
		if doc.Len()+len(stream.Msg().GetChunk()) > MaxPain002Bytes {
			return nil, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("the status report is over %d MiB (文件过大); nothing was changed", MaxPain002Bytes>>20))
		}
		doc.Write(stream.Msg().GetChunk())
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	if name == "" {
		name = "pain.002"
	}
	sts, err := iso20022.ReadPain002(&doc)
	if err != nil {
		var es iso20022.Errors
		if errors.As(err, &es) {
			return nil, pain002Errors(name, es)
		}
		return nil, err
	}
	ids := make([]string, len(sts))
	for n, st := range sts {
		ids[n] = st.EndToEndID
	}
	known, err := s.Store.InstructionsByEndToEnd(ctx, ids)
	if err != nil {
		return nil, err
	}
	var (
		bad     iso20022.Errors
		results []store.Result
		amounts = map[string]int64{}
		res     = &wengangv1.ImportPain002Response{}
	)
	for _, st := range sts {
		i, ok := known[st.EndToEndID]
		switch {
		case !ok:
			bad = append(bad, iso20022.Error{Line: st.Line, Element: "TxInfAndSts/OrgnlEndToEndId", Reason: fmt.Sprintf("%q is no instruction of this city (未知的端到端标识)", st.EndToEndID)})
			continue
		case (st.Paid() || st.Rejected()) && st.On == 0:
			bad = append(bad, iso20022.Error{Line: st.Line, Element: "TxInfAndSts/AccptncDtTm", Reason: "no date: neither AccptncDtTm nor GrpHdr/CreDtTm (缺少日期)"})
			continue
		case st.Paid() && st.BankReference == "":
			bad = append(bad, iso20022.Error{Line: st.Line, Element: "TxInfAndSts/AcctSvcrRef", Reason: "no bank reference: neither AcctSvcrRef, ClrSysRef nor GrpHdr/MsgId (缺少银行流水号)"})
			continue
		case st.Paid():
			results = append(results, store.Result{InstructionID: i.ID, Paid: true, BankReference: st.BankReference, On: st.On})
		case st.Rejected():
			reason := st.Reason
			if reason == "" {
				reason = st.ReasonCode
			}
			results = append(results, store.Result{InstructionID: i.ID, Reason: reason, ReasonCode: st.ReasonCode, On: st.On})
		default:
			res.UnchangedCount++ // not final
			continue
		}
		amounts[i.ID] = i.AmountFen
	}
	if len(bad) > 0 {
		return nil, pain002Errors(name, bad)
	}
	if len(results) > 0 {
		_, changed, err := s.Store.ReportResults(ctx, p, results, s.Now())
		if err != nil {
			return nil, err
		}
		paid, returned := store.Tally{}, store.Tally{}
		for n, r := range results {
			switch {
			case !changed[n]:
				res.UnchangedCount++
			case r.Paid:
				paid.Count, paid.AmountFen = paid.Count+1, paid.AmountFen+amounts[r.InstructionID]
			default:
				returned.Count, returned.AmountFen = returned.Count+1, returned.AmountFen+amounts[r.InstructionID]
			}
		}
		res.Paid, res.Returned = protoconv.Tally(paid.Count, paid.AmountFen), protoconv.Tally(returned.Count, returned.AmountFen)
	}
	if res.Paid == nil {
		res.Paid, res.Returned = protoconv.Tally(0, 0), protoconv.Tally(0, 0)
	}
	s.Log.LogAttrs(ctx, slog.LevelInfo, "pain.002 imported", slog.String("file", name), slog.Int("transactions", len(sts)),
		slog.Int64("paid", res.Paid.GetCount()), slog.Int64("returned", res.Returned.GetCount()), slog.String("by", p.Subject))
	return connect.NewResponse(res), nil
}

// pain002Errors is InvalidArgument naming every bad element of file with its
// line.
func pain002Errors(file string, es iso20022.Errors) error {
	rows := make(source.Errors, len(es))
	for n, e := range es {
		rows[n] = source.RowError{File: file, Line: e.Line, Column: e.Element, Reason: e.Reason}
	}
	return rows
}

// paymentState reads a PaymentState.
func paymentState(s wengangv1.PaymentState) (store.PaymentState, bool) {
	switch s {
	case wengangv1.PaymentState_PAYMENT_STATE_RELEASED:
		return store.PaymentReleased, true
	case wengangv1.PaymentState_PAYMENT_STATE_ACKNOWLEDGED:
		return store.PaymentAcknowledged, true
	case wengangv1.PaymentState_PAYMENT_STATE_PAID:
		return store.PaymentPaid, true
	case wengangv1.PaymentState_PAYMENT_STATE_RETURNED:
		return store.PaymentReturned, true
	case wengangv1.PaymentState_PAYMENT_STATE_REISSUED:
		return store.PaymentReissued, true
	}
	return "", false
}

// instructionMessage returns i as it goes on the wire.
func instructionMessage(i store.Instruction) *wengangv1.PaymentInstruction {
	m := &wengangv1.PaymentInstruction{
		InstructionId: i.ID, EndToEndId: i.EndToEndID, RoundId: i.RoundID, County: i.County, BatchId: i.BatchID, Uscc: i.USCC,
		PayeeName: i.Payee.AccountName, AccountNo: i.Payee.AccountNo, Bank: i.Payee.Bank, BankCode: i.Payee.BankCode,
		AccountKind: wengangv1.AccountKind(i.Payee.Kind), AmountFen: i.AmountFen, Purpose: i.Purpose, PolicyYear: int32(i.PolicyYear),
		State:     wengangv1.PaymentState(wengangv1.PaymentState_value["PAYMENT_STATE_"+strings.ToUpper(string(i.State))]),
		ReissueOf: i.ReissueOf, ReissuedBy: i.ReissuedBy, FundingRequestId: i.FundingRequestID, ReleasedAt: timestamppb.New(i.ReleasedAt),
		BankReference: i.BankReference, PaidOn: protoconv.Date(i.PaidOn),
		ReturnReason: i.ReturnReason, ReturnCode: i.ReturnCode, ReturnedOn: protoconv.Date(i.ReturnedOn),
	}
	if !i.AcknowledgedAt.IsZero() {
		m.AcknowledgedAt = timestamppb.New(i.AcknowledgedAt)
	}
	return m
}

// fundingMessage returns f as it goes on the wire.
func fundingMessage(f store.FundingRequest) *wengangv1.FundingRequest {
	m := &wengangv1.FundingRequest{
		FundingRequestId: f.ID, RoundId: f.RoundID, County: f.County, InstructionCount: f.InstructionCount, TotalFen: f.TotalFen,
		State:       wengangv1.FundingState(wengangv1.FundingState_value["FUNDING_STATE_"+strings.ToUpper(f.State)]),
		RequestedAt: timestamppb.New(f.RequestedAt), Reference: f.Reference, ConfirmedOn: protoconv.Date(f.ConfirmedOn), ConfirmedBy: f.ConfirmedBy,
	}
	if !f.ConfirmedAt.IsZero() {
		m.ConfirmedAt = timestamppb.New(f.ConfirmedAt)
	}
	return m
}

// reconciliationMessage returns r as it goes on the wire.
func reconciliationMessage(r store.Reconciliation) *wengangv1.CountyReconciliation {
	t := func(t store.Tally) *wengangv1.Tally { return protoconv.Tally(t.Count, t.AmountFen) }
	return &wengangv1.CountyReconciliation{
		County: r.County, Released: t(r.Released), Paid: t(r.Paid), Returned: t(r.Returned), Outstanding: t(r.Outstanding),
		Reissued: t(r.Reissued), Funded: t(r.Funded), Balanced: r.Balanced(),
	}
}

var _ wengangv1connect.FinanceServiceHandler = (*FinanceService)(nil)
