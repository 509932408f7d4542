package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"github.com/xuri/excelize/v2"

	"wengang/internal/gen"
	"wengang/internal/protoconv"
	"wengang/internal/results"
	"wengang/internal/source"
	"wengang/policy/civil"
	"wengang/policy/refund"
	wengangv1 "wengang/proto/wengang/v1"
)

var ncAsOf = civil.MustDate(2022, 4, 28)

// ncOffline runs the offline pipeline of `wengang screen --dir` on dir: its
// results and the bytes of its results.csv.
func ncOffline(t testing.TB, dir string, asOf civil.Date) ([]refund.Result, []byte) {
	t.Helper()
	r, err := source.ReadDir(dir, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := refund.Screen(&r.Dataset, refund.DefaultParams(), asOf)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := results.WriteCSV(&buf, rs); err != nil {
		t.Fatal(err)
	}
	return rs, buf.Bytes()
}

// ncScreen runs a screening of a dataset of county as the clerk.
func ncScreen(t testing.TB, c ncClients, county, dataset, key string) *wengangv1.Screening {
	t.Helper()
	res, err := c.Screening.RunScreening(context.Background(), connect.NewRequest(&wengangv1.RunScreeningRequest{County: county,
		Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: dataset}, AsOf: protoconv.Date(ncAsOf), IdempotencyKey: key}))
	if err != nil {
		t.Fatalf("screen %s/%s: %v", county, dataset, err)
	}
	return res.Msg.GetScreening()
}

func TestScreeningMatchesOfflineByteForByte(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ds := ncGenerate(t, 300, 11)
	cases := []struct {
		name, county, dir string
	}{
		{"generated-csv", ncCounty, ncWriteDir(t, ds, gen.Format{Encoding: gen.UTF8})},
		{"generated-gb18030-chinese", ncCounty, ncWriteDir(t, ds, gen.Format{Encoding: gen.GB18030, Chinese: true, Shuffle: true, Grouping: true, Seed: 9})},
		{"generated-xlsx", ncCounty, ncWriteDir(t, ds, gen.Format{XLSX: true, Chinese: true, Seed: 4})},
		{"handmade-371502", ncCounty, ncHandmade(t, ncCounty)},
		{"handmade-371521", ncOtherCounty, ncHandmade(t, ncOtherCounty)},
	}
	expected, err := os.ReadFile(filepath.Join("..", "..", "client", "cli", "testdata", "handmade", "expected-results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, want := ncOffline(t, tc.dir, ncAsOf)
			ncImportDir(t, c, tc.county, tc.dir, tc.name)
			sc := ncScreen(t, c, tc.county, tc.name, "k-"+tc.name)
			sum := sha256.Sum256(want)
			if sc.GetResultsSha256() != hex.EncodeToString(sum[:]) {
				t.Errorf("results_sha256 %s, want %x", sc.GetResultsSha256(), sum)
			}
			got := ncExport(t, c, &wengangv1.ExportResultsRequest{County: tc.county, ScreeningId: sc.GetScreeningId()})
			if !bytes.Equal(got, want) {
				t.Fatalf("the node's results.csv differs from the offline one:\n%s\nwant:\n%s", ncHead(got), ncHead(want))
			}
			if strings.HasPrefix(tc.name, "handmade") {
				// The hand-worked results, row for row, of this county.
				if !bytes.Equal(got, ncFilterCSV(t, expected, tc.county)) {
					t.Errorf("the node's results differ from the hand-worked ones:\n%s", got)
				}
			}
			// The tallies are the offline decisions.
			var tally [4]int64
			var fen [4]int64
			for _, r := range rs {
				tally[r.Decision]++
				fen[r.Decision] += r.RefundFen
			}
			st := sc.GetScreened()
			if st.GetUnitCount() != int64(len(rs)) || st.GetEligible().GetCount() != tally[refund.Eligible] || st.GetEligible().GetAmountFen() != fen[refund.Eligible] ||
				st.GetHold().GetCount() != tally[refund.Hold] || st.GetHold().GetAmountFen() != fen[refund.Hold] || st.GetIneligible().GetCount() != tally[refund.Ineligible] {
				t.Errorf("screened tally %v, want %v %v", st, tally, fen)
			}
			if !sameTally(st, sc.GetReviewed()) || sc.GetRunBy() != "tok-clerk" || sc.GetDatasetHash() == "" || sc.GetPolicy().GetId() != refund.DefaultParamsID {
				t.Errorf("screening %v", sc)
			}
			// Running it again gives the same bytes.
			again := ncScreen(t, c, tc.county, tc.name, "k2-"+tc.name)
			if again.GetScreeningId() == sc.GetScreeningId() || again.GetResultsSha256() != sc.GetResultsSha256() ||
				!bytes.Equal(ncExport(t, c, &wengangv1.ExportResultsRequest{County: tc.county, ScreeningId: again.GetScreeningId()}), want) {
				t.Errorf("a second screening %v differs from the first", again)
			}
		})
	}
}

func sameTally(a, b *wengangv1.DecisionTally) bool {
	return a.GetUnitCount() == b.GetUnitCount() && a.GetEligible().GetCount() == b.GetEligible().GetCount() &&
		a.GetEligible().GetAmountFen() == b.GetEligible().GetAmountFen() && a.GetHold().GetCount() == b.GetHold().GetCount() &&
		a.GetIneligible().GetCount() == b.GetIneligible().GetCount()
}

// ncFilterCSV keeps the header and the rows of results.csv of county.
func ncFilterCSV(t testing.TB, data []byte, county string) []byte {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for i, rec := range recs {
		if i == 0 || rec[2] == county {
			w.Write(rec)
		}
	}
	w.Flush()
	return buf.Bytes()
}

// ncHead is the first lines of a file, for failure messages.
func ncHead(b []byte) string {
	lines := strings.SplitAfterN(string(b), "\n", 6)
	return strings.Join(lines[:min(5, len(lines))], "")
}

func TestRunScreeningRequests(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	dir := ncHandmade(t, ncCounty)
	ncImportDir(t, c, ncCounty, dir, "d")
	req := func(key string, asOf civil.Date, policy string) *connect.Request[wengangv1.RunScreeningRequest] {
		return connect.NewRequest(&wengangv1.RunScreeningRequest{County: ncCounty, Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: "d"},
			AsOf: protoconv.Date(asOf), PolicyId: policy, IdempotencyKey: key})
	}
	first, err := c.Screening.RunScreening(ctx, req("k", ncAsOf, ""))
	if err != nil {
		t.Fatal(err)
	}
	// RunScreening sealed the open dataset, in the clerk's name.
	d, err := c.Import.GetDataset(ctx, connect.NewRequest(&wengangv1.GetDatasetRequest{County: ncCounty, Dataset: &wengangv1.GetDatasetRequest_DatasetName{DatasetName: "d"}}))
	if err != nil || d.Msg.GetDataset().GetState() != wengangv1.DatasetState_DATASET_STATE_SEALED || d.Msg.GetDataset().GetSealedBy() != "tok-clerk" ||
		d.Msg.GetDataset().GetContentHash() != first.Msg.GetScreening().GetDatasetHash() {
		t.Errorf("dataset after screening: %v, %v", d, err)
	}
	again, err := c.Screening.RunScreening(ctx, req("k", ncAsOf, refund.DefaultParamsID))
	if err != nil || again.Msg.GetScreening().GetScreeningId() != first.Msg.GetScreening().GetScreeningId() {
		t.Errorf("replay: %v, %v", again, err)
	}
	var screenings int
	n.pool.QueryRow(ctx, `SELECT count(*) FROM screening`).Scan(&screenings)
	if screenings != 1 {
		t.Errorf("%d screenings after a replay, want 1", screenings)
	}
	for _, tc := range []struct {
		name string
		req  *connect.Request[wengangv1.RunScreeningRequest]
		code connect.Code
	}{
		{"key used for another date", req("k", civil.MustDate(2022, 5, 31), ""), connect.CodeAlreadyExists},
		{"no key", req("", ncAsOf, ""), connect.CodeInvalidArgument},
		{"no date", req("k3", 0, ""), connect.CodeInvalidArgument},
		{"bad date", connect.NewRequest(&wengangv1.RunScreeningRequest{County: ncCounty, Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: "d"},
			AsOf: &wengangv1.Date{Year: 2022, Month: 2, Day: 30}, IdempotencyKey: "k4"}), connect.CodeInvalidArgument},
		{"unknown policy", req("k5", ncAsOf, "nowhere-2030"), connect.CodeNotFound},
		{"unknown dataset", connect.NewRequest(&wengangv1.RunScreeningRequest{County: ncCounty, Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: "none"},
			AsOf: protoconv.Date(ncAsOf), IdempotencyKey: "k6"}), connect.CodeNotFound},
		{"dataset of another county", connect.NewRequest(&wengangv1.RunScreeningRequest{County: ncOtherCounty, Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: "d"},
			AsOf: protoconv.Date(ncAsOf), IdempotencyKey: "k7"}), connect.CodeNotFound},
	} {
		_, err := c.Screening.RunScreening(ctx, tc.req)
		if ncCode(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	// An open dataset that lacks a kind of file cannot be screened.
	data, _ := os.ReadFile(filepath.Join(dir, "units.csv"))
	if _, err := ncImport(ctx, c, ncUpload{dataset: "partial", fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: data}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Screening.RunScreening(ctx, connect.NewRequest(&wengangv1.RunScreeningRequest{County: ncCounty,
		Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: "partial"}, AsOf: protoconv.Date(ncAsOf), IdempotencyKey: "k8"}))
	ncWantCode(t, err, connect.CodeFailedPrecondition)

	// Get and list.
	got, err := c.Screening.GetScreening(ctx, connect.NewRequest(&wengangv1.GetScreeningRequest{County: ncCounty, ScreeningId: first.Msg.GetScreening().GetScreeningId()}))
	if err != nil || got.Msg.GetScreening().GetResultsSha256() != first.Msg.GetScreening().GetResultsSha256() {
		t.Errorf("get: %v, %v", got, err)
	}
	_, err = c.Screening.GetScreening(ctx, connect.NewRequest(&wengangv1.GetScreeningRequest{County: ncOtherCounty, ScreeningId: first.Msg.GetScreening().GetScreeningId()}))
	ncWantCode(t, err, connect.CodeNotFound)
	second := ncScreen(t, c, ncCounty, "d", "k9")
	var ids []string
	lr := &wengangv1.ListScreeningsRequest{County: ncCounty, PageSize: 1}
	for {
		res, err := c.Screening.ListScreenings(ctx, connect.NewRequest(lr))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Msg.GetScreenings() {
			ids = append(ids, s.GetScreeningId())
		}
		if lr.PageToken = res.Msg.GetNextPageToken(); lr.PageToken == "" {
			break
		}
	}
	if !slices.Equal(ids, []string{second.GetScreeningId(), first.Msg.GetScreening().GetScreeningId()}) {
		t.Errorf("screenings %v, want newest first", ids)
	}
}

func TestListResultsFilters(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	dir := ncWriteDir(t, ncGenerate(t, 250, 5), gen.Format{})
	rs, _ := ncOffline(t, dir, ncAsOf)
	ncImportDir(t, c, ncCounty, dir, "d")
	sc := ncScreen(t, c, ncCounty, "d", "k")
	list := func(req *wengangv1.ListResultsRequest) ([]string, int64) {
		t.Helper()
		req.County, req.ScreeningId = ncCounty, sc.GetScreeningId()
		var out []string
		var matches int64 = -1
		for {
			res, err := c.Screening.ListResults(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if matches >= 0 && res.Msg.GetMatchCount() != matches {
				t.Errorf("match count changed between pages")
			}
			matches = res.Msg.GetMatchCount()
			if res.Msg.GetPolicy().GetId() != refund.DefaultParamsID {
				t.Errorf("policy %v", res.Msg.GetPolicy())
			}
			for _, r := range res.Msg.GetResults() {
				out = append(out, r.GetUscc())
			}
			if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
				return out, matches
			}
		}
	}
	want := func(keep func(*refund.Result) bool) []string {
		var out []string
		for i := range rs {
			if keep(&rs[i]) {
				out = append(out, rs[i].USCC)
			}
		}
		return out
	}
	someName := []rune(rs[len(rs)/2].Name)
	nameQuery := string(someName[3:5])
	usccQuery := strings.ToLower(rs[7].USCC[:9])
	for _, tc := range []struct {
		name string
		req  *wengangv1.ListResultsRequest
		keep func(*refund.Result) bool
	}{
		{"all, in pages of 7", &wengangv1.ListResultsRequest{PageSize: 7}, func(*refund.Result) bool { return true }},
		{"holds", &wengangv1.ListResultsRequest{Decisions: []wengangv1.Decision{wengangv1.Decision_DECISION_HOLD}, PageSize: 5},
			func(r *refund.Result) bool { return r.Decision == refund.Hold }},
		{"eligible or hold", &wengangv1.ListResultsRequest{Decisions: []wengangv1.Decision{wengangv1.Decision_DECISION_ELIGIBLE, wengangv1.Decision_DECISION_HOLD}},
			func(r *refund.Result) bool { return r.Decision != refund.Ineligible }},
		{"arrears or zombie", &wengangv1.ListResultsRequest{Reasons: []wengangv1.Reason{wengangv1.Reason_REASON_ARREARS, wengangv1.Reason_REASON_ZOMBIE}},
			func(r *refund.Result) bool { return r.Reasons.Has(refund.Arrears) || r.Reasons.Has(refund.Zombie) }},
		{"ineligible for NOT_SME", &wengangv1.ListResultsRequest{Decisions: []wengangv1.Decision{wengangv1.Decision_DECISION_INELIGIBLE},
			Reasons: []wengangv1.Reason{wengangv1.Reason_REASON_NOT_SME}},
			func(r *refund.Result) bool { return r.Decision == refund.Ineligible && r.Reasons.Has(refund.NotSME) }},
		{"name contains", &wengangv1.ListResultsRequest{Query: nameQuery},
			func(r *refund.Result) bool { return strings.Contains(r.Name, nameQuery) }},
		{"uscc prefix, any case", &wengangv1.ListResultsRequest{Query: usccQuery, PageSize: 1},
			func(r *refund.Result) bool { return strings.HasPrefix(r.USCC, strings.ToUpper(usccQuery)) }},
		{"nothing", &wengangv1.ListResultsRequest{Query: "没有这个单位"}, func(*refund.Result) bool { return false }},
	} {
		got, matches := list(tc.req)
		w := want(tc.keep)
		if len(w) == 0 && tc.name != "nothing" {
			t.Fatalf("%s: the generated data should have such units", tc.name)
		}
		if !slices.Equal(got, w) || matches != int64(len(w)) {
			t.Errorf("%s: %d results (match count %d), want %d", tc.name, len(got), matches, len(w))
		}
	}
	_, err := c.Screening.ListResults(ctx, connect.NewRequest(&wengangv1.ListResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(), PageToken: "bad"}))
	ncWantCode(t, err, connect.CodeInvalidArgument)
	_, err = c.Screening.ListResults(ctx, connect.NewRequest(&wengangv1.ListResultsRequest{County: ncCounty, ScreeningId: "999999"}))
	ncWantCode(t, err, connect.CodeNotFound)

	// The result message carries the unit's figures.
	res, err := c.Screening.ListResults(ctx, connect.NewRequest(&wengangv1.ListResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(),
		Query: rs[0].USCC}))
	if err != nil || len(res.Msg.GetResults()) != 1 {
		t.Fatalf("%v, %v", res, err)
	}
	r, w := res.Msg.GetResults()[0], rs[0]
	if r.GetDecision() != protoconv.Decision(w.Decision) || r.GetScreenedDecision() != r.GetDecision() || r.GetBaseFen() != w.BaseFen ||
		r.GetRefundFen() != w.RefundFen || r.GetMonthsPaid() != w.MonthsPaid || r.GetLayoffRate().GetDenominator() != int64(w.HeadcountStart) ||
		r.GetSmallUnit() != (w.HeadcountEnd <= 30) || r.GetReviewed() || r.GetPayee().GetAccountNo() != w.Payee.AccountNo {
		t.Errorf("result %v, want %+v", r, w)
	}
}

func TestExportResultsXLSXAndReviewedView(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	dir := ncHandmade(t, ncCounty)
	rs, csvWant := ncOffline(t, dir, ncAsOf)
	ncImportDir(t, c, ncCounty, dir, "d")
	sc := ncScreen(t, c, ncCounty, "d", "k")

	data := ncExport(t, c, &wengangv1.ExportResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(), Format: wengangv1.FileFormat_FILE_FORMAT_XLSX})
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the XLSX export does not open: %v", err)
	}
	rows, err := f.GetRows(f.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	recs, _ := csv.NewReader(bytes.NewReader(csvWant)).ReadAll()
	if len(rows) != len(recs) {
		t.Fatalf("XLSX has %d rows, results.csv %d", len(rows), len(recs))
	}
	for i := range recs {
		for len(rows[i]) < len(recs[i]) {
			rows[i] = append(rows[i], "")
		}
		if !slices.Equal(rows[i], recs[i]) {
			t.Errorf("XLSX row %d: %v, want %v", i+1, rows[i], recs[i])
		}
	}
	stream, err := c.Screening.ExportResults(ctx, connect.NewRequest(&wengangv1.ExportResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId()}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || stream.Msg().GetContentType() != "text/csv; charset=utf-8" || stream.Msg().GetFileName() != "results.csv" {
		t.Errorf("first message %v", stream.Msg())
	}
	stream.Close()

	// Exclude an eligible unit: the reviewed view shows it ineligible with
	// refund 0; the screened view is unchanged.
	var target refund.Result
	for _, r := range rs {
		if r.Decision == refund.Eligible {
			target = r
			break
		}
	}
	_, err = n.reviewer().Review.ExcludeUnit(ctx, connect.NewRequest(&wengangv1.ExcludeUnitRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(),
		Uscc: target.USCC, Reason: "经核实已停业", IdempotencyKey: "x"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := ncExport(t, c, &wengangv1.ExportResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId()}); !bytes.Equal(got, csvWant) {
		t.Errorf("the screened export changed after a review")
	}
	reviewed := ncExport(t, c, &wengangv1.ExportResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(), View: wengangv1.ResultView_RESULT_VIEW_REVIEWED})
	wantRS := slices.Clone(rs)
	for i := range wantRS {
		if wantRS[i].USCC == target.USCC {
			wantRS[i].Decision, wantRS[i].RefundFen = refund.Ineligible, 0
		}
	}
	var buf bytes.Buffer
	results.WriteCSV(&buf, wantRS)
	if !bytes.Equal(reviewed, buf.Bytes()) {
		t.Errorf("reviewed export:\n%s\nwant:\n%s", reviewed, buf.Bytes())
	}
	eligible := ncExport(t, c, &wengangv1.ExportResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(), View: wengangv1.ResultView_RESULT_VIEW_REVIEWED,
		Decisions: []wengangv1.Decision{wengangv1.Decision_DECISION_ELIGIBLE}})
	if bytes.Contains(eligible, []byte(target.USCC)) || !bytes.HasPrefix(eligible, []byte(strings.Join(results.Header, ",")+"\n")) {
		t.Errorf("eligible export lists the excluded unit:\n%s", eligible)
	}
	bad, err := c.Screening.ExportResults(ctx, connect.NewRequest(&wengangv1.ExportResultsRequest{County: ncCounty, ScreeningId: sc.GetScreeningId(), Format: 7}))
	if err == nil {
		for bad.Receive() {
		}
		err = bad.Err()
	}
	ncWantCode(t, err, connect.CodeInvalidArgument)
}
