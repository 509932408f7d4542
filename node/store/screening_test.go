package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/node/store"
	"wengang/policy/access"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// ncUpload is an upload of the units of fullDataset into dataset name of
// countyA.
func ncUpload(name string) *store.Upload {
	return &store.Upload{County: countyA, Dataset: name, Kind: store.FileUnits, File: meta("units.csv"), SizeBytes: 10, ImportedBy: "tok",
		Units: fullDataset().Units}
}

// ncFinish answers with the number of files the dataset has.
func ncFinish(rep store.DatasetReport) ([]byte, audit.Entry, error) {
	return []byte(fmt.Sprint(len(rep.Files))), audit.Entry{Actor: access.System("test"), Action: "import", ObjectID: fmt.Sprint(rep.ID)}, nil
}

func ncCount(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportFileReplacesAndReplays(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	up := ncUpload("d")
	up.Key, up.RequestSHA256 = "k", sha256.Sum256([]byte("first"))
	reply, err := s.ImportFile(ctx, up, ncFinish)
	if err != nil || reply.Replayed || string(reply.Response) != "1" {
		t.Fatalf("first import: %+v, %v", reply, err)
	}
	// The same key and request: the first answer, nothing stored again.
	again, err := s.ImportFile(ctx, up, func(store.DatasetReport) ([]byte, audit.Entry, error) {
		t.Error("finish ran for a replay")
		return nil, audit.Entry{}, nil
	})
	if err != nil || !again.Replayed || string(again.Response) != "1" {
		t.Errorf("replay: %+v, %v", again, err)
	}
	other := *up
	other.RequestSHA256 = sha256.Sum256([]byte("second"))
	_, err = s.ImportFile(ctx, &other, ncFinish)
	wantKind(t, err, fault.ErrConflict)

	// A second units file replaces the first, rows and all.
	repl := ncUpload("d")
	repl.Units = repl.Units[:2]
	repl.File = meta("units2.csv")
	if _, err := s.ImportFile(ctx, repl, ncFinish); err != nil {
		t.Fatal(err)
	}
	rep, err := s.GetDatasetReportByName(ctx, countyA, "d")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Files) != 1 || rep.Files[0].Name != "units2.csv" || rep.UnitCount != 2 || rep.Reports[0].ImportedBy != "tok" || rep.Reports[0].SizeBytes != 10 {
		t.Errorf("after replacing: %+v", rep)
	}
	if n := countRows(t, pool, "dataset_unit", rep.ID); n != 2 {
		t.Errorf("%d unit rows, want 2", n)
	}
	if n := ncCount(t, pool, `SELECT count(*) FROM audit_log WHERE domain = $1`, countyA); n != 2 {
		t.Errorf("%d audit entries, want 2", n)
	}

	// A row that cannot be stored: nothing is, not even the new dataset.
	bad := ncUpload("e")
	bad.Units = slices.Clone(bad.Units)
	bad.Units[1].Status = 9
	_, err = s.ImportFile(ctx, bad, ncFinish)
	wantKind(t, err, fault.ErrInvalid)
	_, err = s.GetDatasetReportByName(ctx, countyA, "e")
	wantKind(t, err, fault.ErrNotFound)
	// finish failing rolls everything back.
	_, err = s.ImportFile(ctx, ncUpload("f"), func(store.DatasetReport) ([]byte, audit.Entry, error) {
		return nil, audit.Entry{}, fault.New(fault.ErrInvalid, "no")
	})
	wantKind(t, err, fault.ErrInvalid)
	_, err = s.GetDatasetReportByName(ctx, countyA, "f")
	wantKind(t, err, fault.ErrNotFound)
}

func TestSealAndUnknownRows(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	ds := fullDataset()
	ds.Units = ds.Units[:2] // two units: rows of the others become unknown
	imp := func(kind store.FileKind, lines []int32, set func(*store.Upload)) {
		t.Helper()
		up := &store.Upload{County: countyA, Dataset: "d", Kind: kind, File: meta(string(kind) + ".csv"), Lines: lines}
		set(up)
		if _, err := s.ImportFile(ctx, up, ncFinish); err != nil {
			t.Fatal(err)
		}
	}
	imp(store.FileContributions, []int32{2, 3, 5, 6, 9}, func(u *store.Upload) { u.Contributions = ds.Contributions })
	imp(store.FileUnits, nil, func(u *store.Upload) { u.Units = ds.Units })
	rep, err := s.GetDatasetReportByName(ctx, countyA, "d")
	if err != nil {
		t.Fatal(err)
	}
	entry := func(store.DatasetReport) audit.Entry {
		return audit.Entry{Actor: access.System("test"), Action: "seal"}
	}
	_, _, err = s.Seal(ctx, countyA, rep.ID, "tok", time.Now(), entry)
	wantKind(t, err, fault.ErrFailedPrecondition)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("accounts, exclusions")) {
		t.Errorf("%v: should name the missing kinds", err)
	}
	imp(store.FileAccounts, []int32{2, 4}, func(u *store.Upload) { u.Accounts = ds.Accounts })
	imp(store.FileExclusions, []int32{2, 3, 4, 5}, func(u *store.Upload) { u.Exclusions = ds.Exclusions })
	sealed, did, err := s.Seal(ctx, countyA, rep.ID, "tok", time.Now(), entry)
	if err != nil || !did {
		t.Fatal(err)
	}
	if sealed.State != store.DatasetSealed || sealed.SealedBy != "tok" || sealed.ContentHash != store.ContentHash(sealed.Files) {
		t.Errorf("sealed: %+v", sealed)
	}
	h := sha256.New()
	for _, k := range []string{"units", "contributions", "accounts", "exclusions"} {
		sum := sha256.Sum256([]byte(k + ".csv"))
		fmt.Fprintf(h, "%s %s\n", k, hex.EncodeToString(sum[:]))
	}
	if want := hex.EncodeToString(h.Sum(nil)); sealed.ContentHash != want {
		t.Errorf("content hash %s, want %s", sealed.ContentHash, want)
	}
	again, did, err := s.Seal(ctx, countyA, rep.ID, "other", time.Now(), entry)
	if err != nil || did || again.SealedBy != "tok" || again.ContentHash != sealed.ContentHash {
		t.Errorf("sealing again: %+v, %v, %v", again, did, err)
	}
	rows, err := s.UnknownRows(ctx, countyA, rep.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s:%d:%s", r.File, r.Line, r.USCC))
	}
	want := []string{
		"contributions.csv:6:914403001922038216", "contributions.csv:9:914403001922038216",
		"exclusions.csv:2:914403001922038216", "exclusions.csv:3:914403001922038216",
		"exclusions.csv:4:91440101MA5CJQ4N59", "exclusions.csv:5:92371581MA3P2D6H90",
	}
	if !slices.Equal(got, want) {
		t.Errorf("unknown rows %v, want %v", got, want)
	}
	_, err = s.ImportFile(ctx, ncUpload("d"), ncFinish)
	wantKind(t, err, fault.ErrFailedPrecondition)
}

// ncSealed stores the rows of fullDataset as a sealed dataset of countyA.
func ncSealed(t testing.TB, s *store.Store) store.DatasetReport {
	t.Helper()
	ctx := context.Background()
	ds := fullDataset()
	for _, up := range []*store.Upload{
		{Kind: store.FileUnits, Units: ds.Units}, {Kind: store.FileContributions, Contributions: ds.Contributions},
		{Kind: store.FileAccounts, Accounts: ds.Accounts}, {Kind: store.FileExclusions, Exclusions: ds.Exclusions},
	} {
		up.County, up.Dataset, up.File = countyA, "d", meta(string(up.Kind)+".csv")
		if _, err := s.ImportFile(ctx, up, ncFinish); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.GetDatasetReportByName(ctx, countyA, "d")
	if err != nil {
		t.Fatal(err)
	}
	rep, _, err = s.Seal(ctx, countyA, rep.ID, "tok", time.Now(), func(store.DatasetReport) audit.Entry {
		return audit.Entry{Actor: access.System("test"), Action: "seal"}
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// ncResults are results to store: one per unit of fullDataset, in USCC
// order, with decisions of each kind.
func ncResults() []store.Result {
	var rs []store.Result
	for i, u := range fullDataset().Units {
		d := []refund.Decision{refund.Eligible, refund.Hold, refund.Ineligible}[i%3]
		why := refund.Reasons(0)
		switch d {
		case refund.Hold:
			why = why.With(refund.SizeMissing)
		case refund.Ineligible:
			why = why.With(refund.Arrears).With(refund.Zombie)
		}
		o := store.Outcome{Decision: d, Reasons: why, RefundFen: int64(100 * i), Size: u.Size,
			Payee: refund.Account{USCC: u.USCC, Kind: refund.AccountCorporate, Bank: "工行", AccountNo: fmt.Sprint(1000 + i), AccountName: u.Name}}
		if d == refund.Ineligible {
			o.RefundFen = 0
		}
		screened := o // keeps the payee's kind and number only
		screened.Payee = refund.Account{USCC: u.USCC, Kind: o.Payee.Kind, AccountNo: o.Payee.AccountNo}
		rs = append(rs, store.Result{USCC: u.USCC, Name: u.Name, UnitCounty: u.County, Industry: u.Industry, Status: u.Status,
			HeadcountStart: u.HeadcountStart, HeadcountEnd: u.HeadcountEnd, Mobile: u.Mobile, MonthsPaid: 12, BaseFen: 1000, Screened: screened, Current: o})
	}
	slices.SortFunc(rs, func(a, b store.Result) int { return bytes.Compare([]byte(a.USCC), []byte(b.USCC)) })
	return rs
}

func ncNewScreening(id int64, key string) store.NewScreening {
	policy, _ := json.Marshal(refund.DefaultParams())
	return store.NewScreening{County: countyA, DatasetID: id, AsOf: civil.MustDate(2022, 4, 28), PolicyID: refund.DefaultParamsID,
		Policy: policy, ResultsSHA256: sha256.Sum256([]byte(key)), RunBy: "tok-clerk", RunByName: "王经办", RunAt: time.Now(), Key: key}
}

func ncScreeningEntry(sc store.Screening) audit.Entry {
	return audit.Entry{Actor: access.System("test"), Action: "screen", ObjectID: fmt.Sprint(sc.ID)}
}

func TestCreateScreeningAndListResults(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	open, err := s.ImportFile(ctx, ncUpload("open"), ncFinish)
	if err != nil {
		t.Fatal(err)
	}
	_ = open
	openRep, _ := s.GetDatasetReportByName(ctx, countyA, "open")
	_, _, err = s.CreateScreening(ctx, ncNewScreening(openRep.ID, "k0"), ncResults(), ncScreeningEntry)
	wantKind(t, err, fault.ErrFailedPrecondition)

	rep := ncSealed(t, s)
	rows := ncResults()
	sc, replayed, err := s.CreateScreening(ctx, ncNewScreening(rep.ID, "k"), rows, ncScreeningEntry)
	if err != nil || replayed {
		t.Fatal(err)
	}
	if sc.DatasetName != "d" || sc.DatasetHash != rep.ContentHash || sc.PolicyYear != 2021 || sc.AsOf != civil.MustDate(2022, 4, 28) ||
		sc.RunByName != "王经办" || sc.Screened.Units != int64(len(rows)) || sc.Screened.Count[refund.Eligible] != 2 ||
		sc.Screened.Fen[refund.Eligible] != 0+300 || sc.Reviewed != sc.Screened {
		t.Errorf("screening %+v", sc)
	}
	again, replayed, err := s.CreateScreening(ctx, ncNewScreening(rep.ID, "k"), rows[:1], ncScreeningEntry)
	if err != nil || !replayed || again.ID != sc.ID || again.Screened.Units != int64(len(rows)) {
		t.Errorf("replay: %+v %v %v", again, replayed, err)
	}
	got, n, err := s.ListResults(ctx, countyA, sc.ID, store.ResultFilter{})
	if err != nil || n != int64(len(rows)) || len(got) != len(rows) {
		t.Fatalf("%d results (%d), %v", len(got), n, err)
	}
	for i := range rows {
		if got[i].USCC != rows[i].USCC || got[i].Screened != rows[i].Screened || got[i].Current.Payee != rows[i].Current.Payee ||
			got[i].Name != rows[i].Name || got[i].Status != rows[i].Status || got[i].Mobile != rows[i].Mobile {
			t.Errorf("result %d: %+v, want %+v", i, got[i], rows[i])
		}
	}
	for _, tc := range []struct {
		name string
		f    store.ResultFilter
		want int
	}{
		{"holds", store.ResultFilter{Decisions: []refund.Decision{refund.Hold}}, 2},
		{"zombie", store.ResultFilter{Reasons: refund.Reasons(0).With(refund.Zombie)}, 1},
		{"size missing or zombie", store.ResultFilter{Reasons: refund.Reasons(0).With(refund.Zombie).With(refund.SizeMissing)}, 3},
		{"a USCC prefix", store.ResultFilter{Query: "9144"}, 3},
		{"a name", store.ResultFilter{Query: "微型"}, 1},
		{"a LIKE wildcard is text", store.ResultFilter{Query: "%"}, 0},
		{"after a unit, one", store.ResultFilter{AfterUSCC: rows[1].USCC, Limit: 1}, 1},
	} {
		got, _, err := s.ListResults(ctx, countyA, sc.ID, tc.f)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d results, want %d (%v)", tc.name, len(got), tc.want, err)
		}
	}
	_, _, err = s.ListResults(ctx, countyB, sc.ID, store.ResultFilter{})
	wantKind(t, err, fault.ErrNotFound)
	list, err := s.ListScreenings(ctx, countyA, store.ScreeningPage{Limit: 10})
	if err != nil || len(list) != 1 || list[0].ID != sc.ID {
		t.Errorf("list: %v, %v", list, err)
	}
}
