package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/internal/results"
	"wengang/internal/rpc"
	"wengang/node/store"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// exportChunk is the size of the chunks ExportResults sends.
const exportChunk = 256 << 10

// RunScreening screens every unit of a dataset as of a date (sealing an
// open dataset first) and stores each unit's result with the parameters
// used and the SHA-256 of the results.csv they make. A repeated key
// returns the first screening; the same key for another request is
// ALREADY_EXISTS.
func (s *ScreeningService) RunScreening(ctx context.Context, req *connect.Request[wengangv1.RunScreeningRequest]) (*connect.Response[wengangv1.RunScreeningResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	county, key := strings.TrimSpace(m.GetCounty()), m.GetIdempotencyKey()
	if county == "" {
		bad.Add("county", "required")
	}
	if key == "" {
		bad.Add("idempotency_key", "required")
	} else if len(key) > 200 {
		bad.Add("idempotency_key", "longer than 200 bytes")
	}
	asOf, err := protoconv.ToDate(m.GetAsOf())
	switch {
	case err != nil:
		bad.Add("as_of", "%v", err)
	case asOf == 0:
		bad.Add("as_of", "required: the data date D")
	}
	if m.GetDatasetId() == "" && strings.TrimSpace(m.GetDatasetName()) == "" {
		bad.Add("dataset", "a dataset_id or a dataset_name is required")
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.serves(county); err != nil {
		return nil, err
	}
	params, err := s.params(m.GetPolicyId())
	if err != nil {
		return nil, err
	}
	same := func(sc store.Screening) error {
		if sc.AsOf != asOf || sc.PolicyID != params.ID ||
			(m.GetDatasetId() != "" && strconv.FormatInt(sc.DatasetID, 10) != m.GetDatasetId()) ||
			(m.GetDatasetId() == "" && sc.DatasetName != strings.TrimSpace(m.GetDatasetName())) {
			return fault.New(fault.ErrConflict, "the idempotency key was used for screening %d of another request (幂等键已用于其他请求)", sc.ID)
		}
		return nil
	}
	if sc, found, err := s.Store.ScreeningByKey(ctx, county, key); err != nil {
		return nil, err
	} else if found {
		if err := same(sc); err != nil {
			return nil, err
		}
		return screeningResponse(sc)
	}

	rep, err := s.findDataset(ctx, county, m.GetDatasetId(), m.GetDatasetName())
	if err != nil {
		return nil, err
	}
	if rep, err = sealDataset(ctx, s.Deps, rep, wengangv1connect.ScreeningServiceRunScreeningProcedure); err != nil {
		return nil, err
	}
	ds, err := s.Store.LoadDataset(ctx, county, rep.ID)
	if err != nil {
		return nil, err
	}
	rs, err := refund.Screen(ds, params, asOf)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if err := results.WriteCSV(h, rs); err != nil {
		return nil, err
	}
	policy, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	by := caller(ctx)
	ns := store.NewScreening{County: county, DatasetID: rep.ID, AsOf: asOf, PolicyID: params.ID, Policy: policy,
		RunBy: by.Subject, RunByName: by.Name, RunAt: s.Now(), Key: key}
	h.Sum(ns.ResultsSHA256[:0])
	sc, replayed, err := s.Store.CreateScreening(ctx, ns, screenedRows(ds.Units, rs), func(sc store.Screening) audit.Entry {
		t := &sc.Screened
		detail, _ := json.Marshal(map[string]any{
			"dataset_id": sc.DatasetID, "dataset_hash": sc.DatasetHash, "as_of": sc.AsOf.String(), "policy_id": sc.PolicyID,
			"results_sha256": hex.EncodeToString(sc.ResultsSHA256[:]), "units": t.Units,
			"eligible": t.Count[refund.Eligible], "hold": t.Count[refund.Hold], "ineligible": t.Count[refund.Ineligible],
			"eligible_refund_fen": t.Fen[refund.Eligible],
		})
		return audit.Entry{Domain: county, At: s.Now(), Actor: by, Action: wengangv1connect.ScreeningServiceRunScreeningProcedure,
			ObjectType: "screening", ObjectID: strconv.FormatInt(sc.ID, 10), Detail: string(detail)}
	})
	if err != nil {
		return nil, err
	}
	if replayed {
		if err := same(sc); err != nil {
			return nil, err
		}
	}
	return screeningResponse(sc)
}

// params returns the policy parameters with the given id, NotFound when
// there are none.
func (s *ScreeningService) params(id string) (refund.Params, error) {
	lookup := s.Params
	if lookup == nil {
		lookup = DefaultParams
	}
	p, err := lookup(strings.TrimSpace(id))
	if err != nil {
		return refund.Params{}, fault.New(fault.ErrNotFound, "no policy parameters %q (无此政策参数): %v", id, err)
	}
	return p, nil
}

func screeningResponse(sc store.Screening) (*connect.Response[wengangv1.RunScreeningResponse], error) {
	msg, err := screeningMessage(sc)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.RunScreeningResponse{Screening: msg}), nil
}

// screenedRows returns the rows to store for results rs of units: each
// unit's facts and its outcome, current as screened.
func screenedRows(units []refund.Unit, rs []refund.Result) []store.Result {
	byUSCC := make(map[string]*refund.Unit, len(units))
	for i := range units {
		byUSCC[units[i].USCC] = &units[i]
	}
	rows := make([]store.Result, len(rs))
	for i := range rs {
		r, u := &rs[i], byUSCC[rs[i].USCC]
		o := store.Outcome{Decision: r.Decision, Reasons: r.Reasons, RefundFen: r.RefundFen, Size: u.Size, Payee: r.Payee}
		rows[i] = store.Result{
			USCC: r.USCC, Name: r.Name, UnitCounty: r.County, Industry: u.Industry, Status: u.Status,
			HeadcountStart: r.HeadcountStart, HeadcountEnd: r.HeadcountEnd, Mobile: u.Mobile,
			MonthsPaid: r.MonthsPaid, BaseFen: r.BaseFen, Screened: o, Current: o,
		}
	}
	return rows
}

// GetScreening returns one screening with its tallies.
func (s *ScreeningService) GetScreening(ctx context.Context, req *connect.Request[wengangv1.GetScreeningRequest]) (*connect.Response[wengangv1.GetScreeningResponse], error) {
	county, id, err := s.screeningRef(req.Msg.GetCounty(), req.Msg.GetScreeningId())
	if err != nil {
		return nil, err
	}
	sc, err := s.Store.GetScreening(ctx, county, id)
	if err != nil {
		return nil, err
	}
	msg, err := screeningMessage(sc)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.GetScreeningResponse{Screening: msg}), nil
}

// ListScreenings lists the county's screenings, newest first.
func (s *ScreeningService) ListScreenings(ctx context.Context, req *connect.Request[wengangv1.ListScreeningsRequest]) (*connect.Response[wengangv1.ListScreeningsResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	county := strings.TrimSpace(m.GetCounty())
	if county == "" {
		bad.Add("county", "required")
	}
	size := rpc.PageSize(&bad, m.GetPageSize(), 50)
	page := store.ScreeningPage{Limit: size + 1}
	if v := m.GetDatasetId(); v != "" {
		page.DatasetID = rpc.ParseID(&bad, "dataset_id", v)
	}
	if tok := m.GetPageToken(); tok != "" {
		page.BeforeID = rpc.ReadIDPageToken(&bad, "screenings/"+county, tok)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.serves(county); err != nil {
		return nil, err
	}
	scs, err := s.Store.ListScreenings(ctx, county, page)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListScreeningsResponse{}
	if len(scs) > size {
		scs = scs[:size]
		res.NextPageToken = rpc.IDPageToken("screenings/"+county, scs[size-1].ID)
	}
	for _, sc := range scs {
		msg, err := screeningMessage(sc)
		if err != nil {
			return nil, err
		}
		res.Screenings = append(res.Screenings, msg)
	}
	return connect.NewResponse(res), nil
}

// ListResults lists a screening's results in USCC order, filtered by
// decision (screened or reviewed), reason and a name or USCC query, with
// the number of matches on all pages.
func (s *ScreeningService) ListResults(ctx context.Context, req *connect.Request[wengangv1.ListResultsRequest]) (*connect.Response[wengangv1.ListResultsResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	county, id := screeningFields(&bad, m.GetCounty(), m.GetScreeningId())
	size := rpc.PageSize(&bad, m.GetPageSize(), 100)
	f := store.ResultFilter{Query: strings.TrimSpace(m.GetQuery()), Limit: size + 1}
	f.Reviewed = resultView(&bad, m.GetView())
	f.Decisions = resultDecisions(&bad, "decisions", m.GetDecisions())
	reasons, err := protoconv.ToReasons(m.GetReasons())
	if err != nil {
		bad.Add("reasons", "%v", err)
	}
	f.Reasons = reasons
	scope := fmt.Sprintf("results/%s/%d", county, id)
	if tok := m.GetPageToken(); tok != "" {
		v, ok := rpc.ReadPageToken(scope, tok)
		if !ok {
			bad.Add("page_token", "not a page token of this list")
		}
		f.AfterUSCC = v
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.serves(county); err != nil {
		return nil, err
	}
	sc, err := s.Store.GetScreening(ctx, county, id)
	if err != nil {
		return nil, err
	}
	params, err := screeningParams(sc)
	if err != nil {
		return nil, err
	}
	rs, matches, err := s.Store.ListResults(ctx, county, id, f)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListResultsResponse{MatchCount: matches, Policy: protoconv.Params(params)}
	if len(rs) > size {
		rs = rs[:size]
		res.NextPageToken = rpc.PageToken(scope, rs[size-1].USCC)
	}
	for i := range rs {
		res.Results = append(res.Results, resultMessage(&rs[i], params))
	}
	return connect.NewResponse(res), nil
}

// ExportResults streams a screening's results as results.csv (exactly what
// internal/results.WriteCSV writes; for the screened view without a
// filter, byte for byte the file the screening hashed, which is checked)
// or as XLSX.
func (s *ScreeningService) ExportResults(ctx context.Context, req *connect.Request[wengangv1.ExportResultsRequest], stream *connect.ServerStream[wengangv1.ExportResultsResponse]) error {
	m := req.Msg
	var bad rpc.Fields
	county, id := screeningFields(&bad, m.GetCounty(), m.GetScreeningId())
	f := store.ResultFilter{Reviewed: resultView(&bad, m.GetView()), Decisions: resultDecisions(&bad, "decisions", m.GetDecisions())}
	format := m.GetFormat()
	if format < wengangv1.FileFormat_FILE_FORMAT_UNSPECIFIED || format > wengangv1.FileFormat_FILE_FORMAT_XLSX {
		bad.Add("format", "unknown format %v (want CSV or XLSX)", format)
	}
	if err := bad.Err(); err != nil {
		return err
	}
	if err := s.serves(county); err != nil {
		return err
	}
	sc, err := s.Store.GetScreening(ctx, county, id)
	if err != nil {
		return err
	}
	var rs []refund.Result
	err = s.Store.EachResult(ctx, county, id, f, func(r *store.Result) error {
		rs = append(rs, exportRow(r, f.Reviewed))
		return nil
	})
	if err != nil {
		return err
	}
	w := &exportWriter{stream: stream, buf: make([]byte, 0, exportChunk), contentType: "text/csv; charset=utf-8", fileName: "results.csv"}
	if format == wengangv1.FileFormat_FILE_FORMAT_XLSX {
		w.contentType, w.fileName = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "results.xlsx"
		if err := results.WriteXLSX(w, rs); err != nil {
			return err
		}
		return w.flush(true)
	}
	h := sha256.New()
	if err := results.WriteCSV(io.MultiWriter(w, h), rs); err != nil {
		return err
	}
	if !f.Reviewed && len(f.Decisions) == 0 && !bytes.Equal(h.Sum(nil), sc.ResultsSHA256[:]) {
		// Sent already, but the stream ends in an error: the client must
		// not keep the file.
		return fmt.Errorf("screening %d of county %s: the stored results no longer make the results.csv the screening hashed", id, county)
	}
	return w.flush(true)
}

// exportRow is the results.csv row of a stored result: as screened, or as
// reviewed (the current outcome).
func exportRow(r *store.Result, reviewed bool) refund.Result {
	o := r.Screened
	if reviewed {
		o = r.Current
	}
	return refund.Result{
		USCC: r.USCC, Name: r.Name, County: r.UnitCounty, Decision: o.Decision, Reasons: o.Reasons,
		HeadcountStart: r.HeadcountStart, HeadcountEnd: r.HeadcountEnd, MonthsPaid: r.MonthsPaid,
		BaseFen: r.BaseFen, RefundFen: o.RefundFen, Payee: refund.Account{Kind: o.Payee.Kind, AccountNo: o.Payee.AccountNo},
	}
}

// exportWriter sends what is written to it in chunks of exportChunk bytes;
// the first message carries the content type and the file name.
type exportWriter struct {
	stream                *connect.ServerStream[wengangv1.ExportResultsResponse]
	buf                   []byte
	sent                  bool
	contentType, fileName string
}

func (w *exportWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(len(p), exportChunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == exportChunk {
			if err := w.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// flush sends what is buffered; last sends even an empty first message,
// so that an empty file still has its content type.
func (w *exportWriter) flush(last bool) error {
	if len(w.buf) == 0 && (w.sent || !last) {
		return nil
	}
	msg := &wengangv1.ExportResultsResponse{Chunk: w.buf}
	if !w.sent {
		msg.ContentType, msg.FileName = w.contentType, w.fileName
	}
	if err := w.stream.Send(msg); err != nil {
		return err
	}
	w.sent = true
	w.buf = make([]byte, 0, exportChunk)
	return nil
}

// screeningRef checks the county and id of a screening named by a request.
func (s *ScreeningService) screeningRef(county, id string) (string, int64, error) {
	var bad rpc.Fields
	c, n := screeningFields(&bad, county, id)
	if err := bad.Err(); err != nil {
		return "", 0, err
	}
	return c, n, s.serves(c)
}

// screeningFields reads a request's county and screening id, adding bad
// fields to bad.
func screeningFields(bad *rpc.Fields, county, id string) (string, int64) {
	county = strings.TrimSpace(county)
	if county == "" {
		bad.Add("county", "required")
	}
	if id == "" {
		bad.Add("screening_id", "required")
		return county, 0
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		bad.Add("screening_id", "%q is not a screening id", id)
	}
	return county, n
}

// resultView reports whether a request asks for the reviewed view.
func resultView(bad *rpc.Fields, v wengangv1.ResultView) bool {
	switch v {
	case wengangv1.ResultView_RESULT_VIEW_UNSPECIFIED, wengangv1.ResultView_RESULT_VIEW_SCREENED:
		return false
	case wengangv1.ResultView_RESULT_VIEW_REVIEWED:
		return true
	}
	bad.Add("view", "unknown view %v", v)
	return false
}

// resultDecisions reads a decision filter.
func resultDecisions(bad *rpc.Fields, field string, ds []wengangv1.Decision) []refund.Decision {
	var out []refund.Decision
	for i, d := range ds {
		v, err := protoconv.ToDecision(d)
		if err != nil {
			bad.Add(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			continue
		}
		out = append(out, v)
	}
	return out
}

// screeningParams reads the parameters a screening recorded.
func screeningParams(sc store.Screening) (refund.Params, error) {
	p, err := refund.ParseParams(bytes.NewReader(sc.Policy))
	if err != nil {
		return refund.Params{}, fmt.Errorf("screening %d of county %s: its recorded policy parameters: %w", sc.ID, sc.County, err)
	}
	return p, nil
}

// screeningMessage returns a screening as a message.
func screeningMessage(sc store.Screening) (*wengangv1.Screening, error) {
	p, err := screeningParams(sc)
	if err != nil {
		return nil, err
	}
	return &wengangv1.Screening{
		ScreeningId: strconv.FormatInt(sc.ID, 10), County: sc.County,
		DatasetId: strconv.FormatInt(sc.DatasetID, 10), DatasetName: sc.DatasetName, DatasetHash: sc.DatasetHash,
		AsOf: protoconv.Date(sc.AsOf), Policy: protoconv.Params(p),
		Screened: tallyMessage(sc.Screened), Reviewed: tallyMessage(sc.Reviewed),
		ResultsSha256: hex.EncodeToString(sc.ResultsSHA256[:]), RunBy: sc.RunBy, RunAt: timestamppb.New(sc.RunAt),
	}, nil
}

func tallyMessage(t store.Tally) *wengangv1.DecisionTally {
	return &wengangv1.DecisionTally{
		UnitCount:  t.Units,
		Eligible:   protoconv.Tally(t.Count[refund.Eligible], t.Fen[refund.Eligible]),
		Hold:       protoconv.Tally(t.Count[refund.Hold], t.Fen[refund.Hold]),
		Ineligible: protoconv.Tally(t.Count[refund.Ineligible], t.Fen[refund.Ineligible]),
	}
}

// resultMessage returns a unit's result as a message: its current
// decision, reasons, refund, size and payee, beside the screened ones.
func resultMessage(r *store.Result, p refund.Params) *wengangv1.ScreeningResult {
	n0, n1 := r.HeadcountStart, r.HeadcountEnd
	small := n1
	if p.SmallBy == refund.SmallByYearStart {
		small = n0
	}
	return &wengangv1.ScreeningResult{
		Uscc: r.USCC, Name: r.Name, County: r.UnitCounty,
		Decision: protoconv.Decision(r.Current.Decision), Reasons: protoconv.Reasons(r.Current.Reasons),
		HeadcountStart: n0, HeadcountEnd: n1, MonthsPaid: r.MonthsPaid, BaseFen: r.BaseFen,
		RefundFen: r.Current.RefundFen, Payee: protoconv.Account(r.Current.Payee),
		LayoffRate: &wengangv1.Ratio{Numerator: int64(max(0, n0-n1)), Denominator: int64(n0)},
		SmallUnit:  small <= p.SmallHeadcount,
		Industry:   r.Industry, SizeClass: protoconv.Size(r.Current.Size), RegistrationStatus: protoconv.Status(r.Status),
		Mobile: r.Mobile, ScreenedDecision: protoconv.Decision(r.Screened.Decision), ScreenedRefundFen: r.Screened.RefundFen,
		Reviewed: r.Reviewed, UsccVerified: r.USCCVerified, BatchId: r.BatchID,
	}
}
