package store_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/fault"
	"wengang/internal/pgtest"
	"wengang/node/store"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

const (
	countyA = "371502"
	countyB = "371521"
)

func newStore(t testing.TB) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	return store.New(pool), pool
}

func meta(name string) store.FileMeta {
	return store.FileMeta{Name: name, Format: "csv", Encoding: "utf-8", SHA256: sha256.Sum256([]byte(name))}
}

func createDataset(t testing.TB, s *store.Store, county, name string) store.Dataset {
	t.Helper()
	d, err := s.CreateDataset(context.Background(), county, name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fullDataset has every field kind and edge: all enum values, zero and
// extreme dates, Chinese text, empty optional text, fen up to MaxInt64.
func fullDataset() *refund.Dataset {
	d := civil.MustDate
	return &refund.Dataset{
		Units: []refund.Unit{
			{USCC: "91440300708461136T", Name: "聊城市东昌府区鲁西餐饮有限公司", County: countyA, Industry: "6210",
				Size: refund.SizeSmall, Status: refund.StatusActive, HeadcountStart: 31, HeadcountEnd: 29, Mobile: "13800000000"},
			{USCC: "91350203M0001QAY9B", Name: "Ünïcode & \"quotes\", commas\nnewline\ttab", County: countyA, Industry: "5211",
				Size: refund.SizeUnknown, Status: refund.StatusDeregistered, HeadcountStart: 0, HeadcountEnd: 0, Mobile: ""},
			{USCC: "914403001922038216", Name: "大", County: "371503", Industry: "0511",
				Size: refund.SizeLarge, Status: refund.StatusRevoked, HeadcountStart: math.MaxInt32, HeadcountEnd: 1},
			{USCC: "91440101MA5CJQ4N59", Name: "中型", County: countyA, Industry: "9700", Size: refund.SizeMedium, Status: refund.StatusActive},
			{USCC: "92371581MA3P2D6H90", Name: "微型个体户", County: countyA, Industry: "8010", Size: refund.SizeMicro, Status: refund.StatusActive},
		},
		Contributions: []refund.Contribution{
			{USCC: "91440300708461136T", Period: 202101, EmployerFen: 48000, EmployeeFen: 12000, LateFeeFen: 0, PaidOn: d(2021, 1, 15)},
			{USCC: "91440300708461136T", Period: 202102, EmployerFen: 48000, EmployeeFen: 12000, LateFeeFen: 350, PaidOn: 0}, // unpaid
			{USCC: "91440300708461136T", Period: 190001, EmployerFen: math.MaxInt64, EmployeeFen: math.MaxInt64 - 1, LateFeeFen: 1 << 40, PaidOn: d(1900, 1, 1)},
			{USCC: "914403001922038216", Period: 299912, EmployerFen: 0, EmployeeFen: 0, LateFeeFen: 0, PaidOn: d(2999, 12, 31)},
			{USCC: "914403001922038216", Period: 202402, EmployerFen: 1, EmployeeFen: 2, LateFeeFen: 3, PaidOn: d(2024, 2, 29)},
		},
		Accounts: []refund.Account{
			{USCC: "91440300708461136T", Kind: refund.AccountCorporate, Bank: "中国工商银行聊城分行", BankCode: "102466000017",
				AccountNo: "1611001019200123456", AccountName: "聊城市东昌府区鲁西餐饮有限公司"},
			{USCC: "91440300708461136T", Kind: refund.AccountSocialInsurance, Bank: "农行", BankCode: "", AccountNo: "0001", AccountName: "鲁西餐饮"},
		},
		Exclusions: []refund.Exclusion{
			{USCC: "914403001922038216", List: refund.ListCredit, Source: "信用中国", ListedOn: d(2021, 6, 1), RemovedOn: 0},
			{USCC: "914403001922038216", List: refund.ListZombie, Source: "", ListedOn: d(2020, 1, 1), RemovedOn: d(2022, 3, 31)},
			{USCC: "91440101MA5CJQ4N59", List: refund.ListIndustryPolicy, Source: "发改委", ListedOn: d(2022, 4, 1)},
			{USCC: "92371581MA3P2D6H90", List: refund.ListEnvironment, Source: "生态环境局", ListedOn: d(2019, 12, 31), RemovedOn: d(2020, 1, 1)},
		},
	}
}

// putAll puts every kind of ds into dataset id.
func putAll(t testing.TB, s *store.Store, county string, id int64, ds *refund.Dataset) {
	t.Helper()
	ctx := context.Background()
	for _, err := range []error{
		s.PutUnits(ctx, county, id, meta("units.csv"), ds.Units),
		s.PutContributions(ctx, county, id, meta("contributions.csv"), ds.Contributions),
		s.PutAccounts(ctx, county, id, meta("accounts.csv"), ds.Accounts),
		s.PutExclusions(ctx, county, id, meta("exclusions.csv"), ds.Exclusions),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func countRows(t testing.TB, pool *pgxpool.Pool, table string, id int64) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()+" WHERE dataset_id = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantKind(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	d := createDataset(t, s, countyA, "2022年4月 第一批")
	want := fullDataset()
	putAll(t, s, countyA, d.ID, want)

	got, err := s.LoadDataset(ctx, countyA, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded dataset differs from what was put:\n got %+v\nwant %+v", got, want)
	}

	info, err := s.GetDataset(ctx, countyA, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "2022年4月 第一批" || info.County != countyA || info.State != store.DatasetOpen || info.CreatedAt.IsZero() || !info.SealedAt.IsZero() {
		t.Errorf("dataset = %+v", info)
	}
	kinds := []store.FileKind{store.FileUnits, store.FileContributions, store.FileAccounts, store.FileExclusions}
	counts := []int{len(want.Units), len(want.Contributions), len(want.Accounts), len(want.Exclusions)}
	if len(info.Files) != 4 {
		t.Fatalf("files = %+v, want 4", info.Files)
	}
	for i, f := range info.Files {
		wantMeta := meta(string(kinds[i]) + ".csv")
		if f.Kind != kinds[i] || f.FileMeta != wantMeta || f.Rows != counts[i] || f.ImportedAt.IsZero() {
			t.Errorf("file %d = %+v, want kind %s, %+v, %d rows", i, f, kinds[i], wantMeta, counts[i])
		}
	}
	byName, err := s.GetDatasetByName(ctx, countyA, "2022年4月 第一批")
	if err != nil || !reflect.DeepEqual(byName, info) {
		t.Errorf("GetDatasetByName = %+v, %v; want %+v", byName, err, info)
	}
}

func TestRoundTripKeepsFileOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	d := createDataset(t, s, countyA, "order")
	// Rows in an order no index would give back by itself: USCCs and
	// periods descending, and repeats.
	var rows []refund.Contribution
	for i := range 3000 {
		rows = append(rows, refund.Contribution{
			USCC:        fmt.Sprintf("91%016d", 3000-i%1000),
			Period:      civil.Month(202112 - i%12),
			EmployerFen: int64(i),
		})
	}
	if err := s.PutContributions(ctx, countyA, d.ID, meta("c.csv"), rows); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadDataset(ctx, countyA, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Contributions, rows) {
		t.Fatal("contributions came back in another order or changed")
	}
	if got.Units != nil || got.Accounts != nil || got.Exclusions != nil {
		t.Errorf("kinds never imported: got %+v", got)
	}
}

func TestPutIsAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const n, bad = 20000, 15000 // far past the first 64 KiB that COPY sends

	good := func() []refund.Contribution {
		rows := make([]refund.Contribution, n)
		for i := range rows {
			rows[i] = refund.Contribution{USCC: "91440300708461136T", Period: 202101, EmployerFen: 100, PaidOn: civil.MustDate(2021, 2, 1)}
		}
		return rows
	}
	tests := []struct {
		name    string
		spoil   func(*refund.Contribution)
		message string
	}{
		{"a row the database refuses (CHECK)", func(c *refund.Contribution) { c.EmployerFen = -1 }, "employer_fen"},
		{"a period the database refuses (CHECK)", func(c *refund.Contribution) { c.Period = 202113 }, "period"},
		{"a row the store cannot convert", func(c *refund.Contribution) { c.PaidOn = 20210230 }, "paid_on 20210230"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, pool := newStore(t)
			d := createDataset(t, s, countyA, "x")
			rows := good()
			tc.spoil(&rows[bad-1])
			err := s.PutContributions(ctx, countyA, d.ID, meta("c.csv"), rows)
			wantKind(t, err, fault.ErrInvalid)
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("row %d:", bad)) || !strings.Contains(msg, tc.message) {
				t.Errorf("error %q does not name row %d and %q", msg, bad, tc.message)
			}
			if got := countRows(t, pool, "dataset_contribution", d.ID); got != 0 {
				t.Fatalf("%d rows stored after a failed import", got)
			}
			if got := countRows(t, pool, "dataset_file", d.ID); got != 0 {
				t.Fatalf("the failed file is recorded")
			}
			// The kind is still free: the corrected file goes in.
			if err := s.PutContributions(ctx, countyA, d.ID, meta("c.csv"), good()); err != nil {
				t.Fatalf("corrected file: %v", err)
			}
			if got := countRows(t, pool, "dataset_contribution", d.ID); got != n {
				t.Fatalf("%d rows after the corrected file, want %d", got, n)
			}
		})
	}
}

func TestPutRefusesRowsItCannotStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	d := createDataset(t, s, countyA, "x")
	u := fullDataset().Units[0]
	a := fullDataset().Accounts[0]
	e := fullDataset().Exclusions[0]
	tests := []struct {
		name string
		put  func() error
	}{
		{"unit with a size out of range", func() error {
			r := u
			r.Size = 9
			return s.PutUnits(ctx, countyA, d.ID, meta("u.csv"), []refund.Unit{u, r})
		}},
		{"unit without a status", func() error {
			r := u
			r.Status = 0
			return s.PutUnits(ctx, countyA, d.ID, meta("u.csv"), []refund.Unit{u, r})
		}},
		{"unit with a negative headcount", func() error {
			r := u
			r.HeadcountEnd = -1
			return s.PutUnits(ctx, countyA, d.ID, meta("u.csv"), []refund.Unit{u, r})
		}},
		{"account without a kind", func() error {
			r := a
			r.Kind = 0
			return s.PutAccounts(ctx, countyA, d.ID, meta("a.csv"), []refund.Account{a, r})
		}},
		{"exclusion on no list", func() error {
			r := e
			r.List = 5
			return s.PutExclusions(ctx, countyA, d.ID, meta("e.csv"), []refund.Exclusion{e, r})
		}},
		{"exclusion without listed_on", func() error {
			r := e
			r.ListedOn = 0
			return s.PutExclusions(ctx, countyA, d.ID, meta("e.csv"), []refund.Exclusion{e, r})
		}},
		{"file without a name", func() error {
			m := meta("")
			return s.PutUnits(ctx, countyA, d.ID, m, nil)
		}},
		{"file of an unknown format", func() error {
			m := meta("u.txt")
			m.Format = "txt"
			return s.PutUnits(ctx, countyA, d.ID, m, nil)
		}},
	}
	for _, tc := range tests {
		err := tc.put()
		if !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%s: err = %v, want fault.ErrInvalid", tc.name, err)
		} else if !strings.Contains(err.Error(), "row 2:") && !strings.HasPrefix(tc.name, "file") {
			t.Errorf("%s: %q does not name row 2", tc.name, err)
		}
	}
	if got, _ := s.GetDataset(ctx, countyA, d.ID); len(got.Files) != 0 {
		t.Fatalf("files recorded after refused imports: %+v", got.Files)
	}
	for _, table := range []string{"dataset_unit", "dataset_account", "dataset_exclusion"} {
		if n := countRows(t, pool, table, d.ID); n != 0 {
			t.Errorf("%s has %d rows", table, n)
		}
	}
}

func TestEmptyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	d := createDataset(t, s, countyA, "x")
	if err := s.PutExclusions(ctx, countyA, d.ID, meta("exclusions.csv"), nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDataset(ctx, countyA, d.ID)
	if err != nil || len(got.Files) != 1 || got.Files[0].Rows != 0 {
		t.Fatalf("GetDataset = %+v, %v; want one file of 0 rows", got, err)
	}
	// Imported once, even empty.
	err = s.PutExclusions(ctx, countyA, d.ID, meta("exclusions.csv"), fullDataset().Exclusions)
	wantKind(t, err, fault.ErrConflict)
}

func TestSealedDatasetRefusesPuts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	d := createDataset(t, s, countyA, "x")
	full := fullDataset()
	if err := s.PutUnits(ctx, countyA, d.ID, meta("units.csv"), full.Units); err != nil {
		t.Fatal(err)
	}
	sealed, err := s.SealDataset(ctx, countyA, d.ID, "hash-1")
	if err != nil {
		t.Fatal(err)
	}
	if sealed.State != store.DatasetSealed || sealed.ContentHash != "hash-1" || sealed.SealedAt.IsZero() || len(sealed.Files) != 1 {
		t.Fatalf("sealed dataset = %+v", sealed)
	}

	for name, err := range map[string]error{
		"units":         s.PutUnits(ctx, countyA, d.ID, meta("units2.csv"), full.Units),
		"contributions": s.PutContributions(ctx, countyA, d.ID, meta("c.csv"), full.Contributions),
		"accounts":      s.PutAccounts(ctx, countyA, d.ID, meta("a.csv"), full.Accounts),
		"exclusions":    s.PutExclusions(ctx, countyA, d.ID, meta("e.csv"), full.Exclusions),
	} {
		if !errors.Is(err, fault.ErrFailedPrecondition) {
			t.Errorf("put %s into a sealed dataset: err = %v, want fault.ErrFailedPrecondition", name, err)
		}
	}
	if n := countRows(t, pool, "dataset_contribution", d.ID); n != 0 {
		t.Errorf("%d contributions went into a sealed dataset", n)
	}

	again, err := s.SealDataset(ctx, countyA, d.ID, "hash-1")
	if err != nil || !reflect.DeepEqual(again, sealed) {
		t.Errorf("sealing again with the same hash = %+v, %v; want the first answer %+v", again, err, sealed)
	}
	_, err = s.SealDataset(ctx, countyA, d.ID, "hash-2")
	wantKind(t, err, fault.ErrConflict)
	_, err = s.SealDataset(ctx, countyA, d.ID, "")
	wantKind(t, err, fault.ErrInvalid)
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := newStore(t)
	d := createDataset(t, s, countyA, "April")

	_, err := s.CreateDataset(ctx, countyA, "April")
	wantKind(t, err, fault.ErrConflict)
	if _, err := s.CreateDataset(ctx, countyB, "April"); err != nil {
		t.Errorf("another county may use the name: %v", err)
	}
	_, err = s.CreateDataset(ctx, countyA, "")
	wantKind(t, err, fault.ErrInvalid)

	units := fullDataset().Units
	if err := s.PutUnits(ctx, countyA, d.ID, meta("units.csv"), units); err != nil {
		t.Fatal(err)
	}
	err = s.PutUnits(ctx, countyA, d.ID, meta("units-again.csv"), units[:1])
	wantKind(t, err, fault.ErrConflict)
	if !strings.Contains(err.Error(), `"units.csv"`) {
		t.Errorf("the conflict does not name the file already there: %v", err)
	}
	if n := countRows(t, pool, "dataset_unit", d.ID); n != len(units) {
		t.Errorf("%d units after the refused second file, want %d", n, len(units))
	}
}

func TestCountiesAreIsolated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	a := createDataset(t, s, countyA, "A's")
	want := fullDataset()
	putAll(t, s, countyA, a.ID, want)
	b := createDataset(t, s, countyB, "B's")

	// B knows A's dataset id; nothing of A's is B's to read or change.
	_, err := s.GetDataset(ctx, countyB, a.ID)
	wantKind(t, err, fault.ErrNotFound)
	_, err = s.GetDatasetByName(ctx, countyB, "A's")
	wantKind(t, err, fault.ErrNotFound)
	_, err = s.LoadDataset(ctx, countyB, a.ID)
	wantKind(t, err, fault.ErrNotFound)
	_, err = s.SealDataset(ctx, countyB, a.ID, "h")
	wantKind(t, err, fault.ErrNotFound)
	full := fullDataset()
	wantKind(t, s.PutUnits(ctx, countyB, a.ID, meta("u.csv"), full.Units), fault.ErrNotFound)
	wantKind(t, s.PutContributions(ctx, countyB, a.ID, meta("c.csv"), full.Contributions), fault.ErrNotFound)
	wantKind(t, s.PutAccounts(ctx, countyB, a.ID, meta("a.csv"), full.Accounts), fault.ErrNotFound)
	wantKind(t, s.PutExclusions(ctx, countyB, a.ID, meta("e.csv"), full.Exclusions), fault.ErrNotFound)

	list, err := s.ListDatasets(ctx, countyB)
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("ListDatasets(B) = %+v, %v; want only B's", list, err)
	}
	list, err = s.ListDatasets(ctx, countyA)
	if err != nil || len(list) != 1 || list[0].ID != a.ID || len(list[0].Files) != 4 {
		t.Fatalf("ListDatasets(A) = %+v, %v; want only A's, with its 4 files", list, err)
	}
	got, err := s.LoadDataset(ctx, countyA, a.ID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("A's dataset changed: %v", err)
	}
	if got, _ := s.GetDataset(ctx, countyA, a.ID); got.State != store.DatasetOpen {
		t.Fatal("B sealed A's dataset")
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := s.GetDataset(ctx, countyA, 12345)
	wantKind(t, err, fault.ErrNotFound)
	_, err = s.LoadDataset(ctx, countyA, 12345)
	wantKind(t, err, fault.ErrNotFound)
	wantKind(t, s.PutUnits(ctx, countyA, 12345, meta("u.csv"), nil), fault.ErrNotFound)
	list, err := s.ListDatasets(ctx, countyA)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListDatasets of an empty store = %+v, %v", list, err)
	}
}

func TestListDatasetsOldestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	var ids []int64
	for _, name := range []string{"c", "a", "b"} {
		ids = append(ids, createDataset(t, s, countyA, name).ID)
	}
	list, err := s.ListDatasets(ctx, countyA)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, d := range list {
		got = append(got, d.ID)
	}
	if !reflect.DeepEqual(got, ids) {
		t.Fatalf("ids %v, want %v", got, ids)
	}
}

// contributions returns n contribution rows of realistic shape.
func contributions(n int) []refund.Contribution {
	rows := make([]refund.Contribution, n)
	for i := range rows {
		paid := civil.MustDate(2021, 1+i%12, 1+i%28)
		if i%50 == 0 {
			paid = 0
		}
		rows[i] = refund.Contribution{
			USCC:        fmt.Sprintf("91371502MA%08d", i/24),
			Period:      civil.Month(202101 + i%12),
			EmployerFen: int64(10000 + i%5000),
			EmployeeFen: int64(2500 + i%1250),
			LateFeeFen:  int64(i % 3),
			PaidOn:      paid,
		}
	}
	return rows
}

// BenchmarkPutContributions imports 100,000 contribution rows per op through
// the store ("store") and, as the baseline of the same run, with a bare
// CopyFrom of the same rows prepared in advance into the same table
// ("bare_copy"). The ratio of the two is the store's overhead.
func BenchmarkPutContributions(b *testing.B) {
	const n = 100_000
	rows := contributions(n)
	ctx := context.Background()

	b.Run("store", func(b *testing.B) {
		s, _ := newStore(b)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			d := createDataset(b, s, countyA, fmt.Sprint("bench-", i))
			b.StartTimer()
			if err := s.PutContributions(ctx, countyA, d.ID, meta("contributions.csv"), rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})

	b.Run("bare_copy", func(b *testing.B) {
		s, pool := newStore(b)
		cols := []string{"county", "dataset_id", "seq", "uscc", "period", "employer_fen", "employee_fen", "late_fee_fen", "paid_on"}
		values := make([][]any, n)
		for i, r := range rows {
			var paid any
			if r.PaidOn != 0 {
				paid = time.Date(r.PaidOn.Year(), time.Month(r.PaidOn.Month()), r.PaidOn.Day(), 0, 0, 0, 0, time.UTC)
			}
			values[i] = []any{countyA, int64(0), int32(i + 1), r.USCC, int32(r.Period), r.EmployerFen, r.EmployeeFen, r.LateFeeFen, paid}
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			d := createDataset(b, s, countyA, fmt.Sprint("bench-", i))
			for _, v := range values {
				v[1] = d.ID
			}
			b.StartTimer()
			if _, err := pool.CopyFrom(ctx, pgx.Identifier{"dataset_contribution"}, cols, pgx.CopyFromRows(values)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkLoadDataset loads a dataset of 100,000 contribution rows.
func BenchmarkLoadDataset(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	s, _ := newStore(b)
	d := createDataset(b, s, countyA, "bench")
	if err := s.PutContributions(ctx, countyA, d.ID, meta("contributions.csv"), contributions(n)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		ds, err := s.LoadDataset(ctx, countyA, d.ID)
		if err != nil || len(ds.Contributions) != n {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
