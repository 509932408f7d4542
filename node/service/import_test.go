package service

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"wengang/internal/gen"
	"wengang/internal/rpc"
	"wengang/internal/source"
	"wengang/policy/civil"
	"wengang/policy/county"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
)

// ncGenerate returns generated source data of ncCounty.
func ncGenerate(t testing.TB, units int, seed int64) *refund.Dataset {
	t.Helper()
	ds, err := gen.Generate(gen.Config{Counties: []string{ncCounty}, Units: units, Seed: seed, AsOf: civil.MustDate(2022, 4, 28)})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// ncWriteDir writes ds into a new directory in format f.
func ncWriteDir(t testing.TB, ds *refund.Dataset, f gen.Format) string {
	t.Helper()
	dir := t.TempDir()
	if err := gen.Write(dir, ds, f); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ncHandmade writes the hand-worked files of client/cli/testdata/handmade
// into a new directory, the units file keeping only the units of county.
func ncHandmade(t testing.TB, code string) string {
	t.Helper()
	src := filepath.Join("..", "..", "client", "cli", "testdata", "handmade")
	dir := t.TempDir()
	reg := county.NewRegistry(county.Liaocheng())
	for _, base := range []string{"units", "contributions", "accounts", "exclusions"} {
		data, err := os.ReadFile(filepath.Join(src, base+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		if base == "units" {
			recs, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			w := csv.NewWriter(&b)
			for i, rec := range recs {
				if c, err := reg.Normalize(rec[2]); i == 0 || (err == nil && c == code) {
					w.Write(rec)
				}
			}
			w.Flush()
			data = []byte(b.String())
		}
		if err := os.WriteFile(filepath.Join(dir, base+".csv"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ncSameDataset fails t unless the two datasets hold equal rows.
func ncSameDataset(t testing.TB, got, want *refund.Dataset) {
	t.Helper()
	eq := func(name string, n, m int, same bool) {
		if n != m || (n > 0 && !same) {
			t.Errorf("%s: %d rows, want %d, equal %v", name, n, m, same)
		}
	}
	eq("units", len(got.Units), len(want.Units), reflect.DeepEqual(got.Units, want.Units))
	eq("contributions", len(got.Contributions), len(want.Contributions), reflect.DeepEqual(got.Contributions, want.Contributions))
	eq("accounts", len(got.Accounts), len(want.Accounts), reflect.DeepEqual(got.Accounts, want.Accounts))
	eq("exclusions", len(got.Exclusions), len(want.Exclusions), reflect.DeepEqual(got.Exclusions, want.Exclusions))
}

// ncContentHash is the content hash import.proto defines, from the files
// of dir.
func ncContentHash(t testing.TB, dir string) string {
	t.Helper()
	h := sha256.New()
	for _, base := range []string{"units", "contributions", "accounts", "exclusions"} {
		matches, _ := filepath.Glob(filepath.Join(dir, base+".*"))
		if len(matches) != 1 {
			t.Fatalf("%s: %d files", base, len(matches))
		}
		data, err := os.ReadFile(matches[0])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "%s %s\n", base, hex.EncodeToString(sum[:]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestImportEveryKindAndFormat(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	ds := ncGenerate(t, 120, 3)
	formats := []struct {
		name string
		f    gen.Format
		enc  string
	}{
		{"csv-utf8", gen.Format{Encoding: gen.UTF8}, "utf-8"},
		{"csv-bom-chinese", gen.Format{Encoding: gen.UTF8BOM, Chinese: true, Shuffle: true, Seed: 2}, "utf-8-bom"},
		{"csv-gb18030", gen.Format{Encoding: gen.GB18030, Chinese: true, Grouping: true, Seed: 3}, "gb18030"},
		{"xlsx", gen.Format{XLSX: true, Seed: 4}, ""},
		{"xlsx-chinese", gen.Format{XLSX: true, Chinese: true, Shuffle: true, Seed: 5}, ""},
	}
	for _, tc := range formats {
		t.Run(tc.name, func(t *testing.T) {
			dir := ncWriteDir(t, ds, tc.f)
			read, err := source.ReadDir(dir, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			responses := ncImportDir(t, c, ncCounty, dir, tc.name)
			for i, res := range responses {
				f := res.GetFile()
				want := read.Files[i]
				if f.GetKind() != wengangv1.SourceFileKind(want.Kind) || f.GetRowCount() != int64(want.Rows) ||
					f.GetSha256() != hex.EncodeToString(want.SHA256[:]) || f.GetFileName() != want.Name {
					t.Errorf("file %d: got %v, want %+v", i, f, want)
				}
				if f.GetImportedBy() != "tok-clerk" || f.GetSizeBytes() == 0 {
					t.Errorf("file %d: imported by %q, %d bytes", i, f.GetImportedBy(), f.GetSizeBytes())
				}
				if wantFormat := map[bool]wengangv1.FileFormat{false: wengangv1.FileFormat_FILE_FORMAT_CSV, true: wengangv1.FileFormat_FILE_FORMAT_XLSX}[tc.f.XLSX]; f.GetFormat() != wantFormat {
					t.Errorf("file %d: format %v", i, f.GetFormat())
				}
				if len(res.GetDataset().GetFiles()) != i+1 || res.GetDataset().GetState() != wengangv1.DatasetState_DATASET_STATE_OPEN {
					t.Errorf("after file %d the dataset is %v", i, res.GetDataset())
				}
			}
			sealed, err := c.Import.SealDataset(ctx, connect.NewRequest(&wengangv1.SealDatasetRequest{County: ncCounty,
				Dataset: &wengangv1.SealDatasetRequest_DatasetName{DatasetName: tc.name}}))
			if err != nil {
				t.Fatal(err)
			}
			d := sealed.Msg.GetDataset()
			if d.GetState() != wengangv1.DatasetState_DATASET_STATE_SEALED || d.GetContentHash() != ncContentHash(t, dir) ||
				d.GetUnitCount() != int64(len(ds.Units)) || d.GetSealedBy() != "tok-clerk" || d.GetSealedAt() == nil {
				t.Errorf("sealed dataset: %v, want content hash %s", d, ncContentHash(t, dir))
			}
			var id int64
			fmt.Sscan(d.GetDatasetId(), &id)
			got, err := n.store.LoadDataset(ctx, ncCounty, id)
			if err != nil {
				t.Fatal(err)
			}
			ncSameDataset(t, got, &read.Dataset)
			var encodings []string
			n.pool.QueryRow(ctx, `SELECT array_agg(encoding ORDER BY kind) FROM dataset_file WHERE dataset_id = $1`, id).Scan(&encodings)
			for _, e := range encodings {
				if e != tc.enc {
					t.Errorf("encodings %v, want %q", encodings, tc.enc)
				}
			}
		})
	}
}

func TestImportBadFileChangesNothing(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	const units = "uscc,name,county,industry,size,status,headcount_start,headcount_end,mobile\n" +
		"91440300708461136T,福满楼餐饮,371502,6110,small,active,20,18,\n" +
		"9144030A708461136T,坏代码,371502,6110,small,active,20,18,\n" +
		"914403001922038216,坏规模,371502,6110,huge,active,20,18,\n" +
		"91350200776049653A,坏人数,371502,5211,large,active,-3,490,\n"
	_, err := ncImport(ctx, c, ncUpload{dataset: "d", fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: []byte(units)})
	ncWantCode(t, err, connect.CodeInvalidArgument)
	got := rpc.RowViolations(err)
	want := []struct {
		line   int64
		column string
	}{{3, "uscc"}, {4, "size"}, {5, "headcount_start"}}
	if len(got) != len(want) {
		t.Fatalf("violations %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].GetFile() != "units.csv" || got[i].GetLine() != w.line || got[i].GetColumn() != w.column || got[i].GetReason() == "" {
			t.Errorf("violation %d: %v, want line %d column %s", i, got[i], w.line, w.column)
		}
	}
	_, err = c.Import.GetDataset(ctx, connect.NewRequest(&wengangv1.GetDatasetRequest{County: ncCounty, Dataset: &wengangv1.GetDatasetRequest_DatasetName{DatasetName: "d"}}))
	ncWantCode(t, err, connect.CodeNotFound)
	ncNothingStored(t, n)

	// A bad header names every bad field.
	_, err = ncImport(ctx, c, ncUpload{dataset: "", fileName: "units.txt", data: []byte(units)})
	ncWantCode(t, err, connect.CodeInvalidArgument)
	var fields []string
	var ce *connect.Error
	if errors.As(err, &ce) {
		for _, d := range ce.Details() {
			if v, err := d.Value(); err == nil {
				if fv, ok := v.(*wengangv1.FieldViolations); ok {
					for _, f := range fv.GetViolations() {
						fields = append(fields, f.GetField())
					}
				}
			}
		}
	}
	if strings.Join(fields, ",") != "dataset,kind,format" {
		t.Errorf("field violations %v, want dataset, kind, format", fields)
	}
	// A truncated upload: the header's SHA-256 is of other bytes.
	stream := c.Import.Import(ctx)
	stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{County: ncCounty, Dataset: "d",
		Kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, FileName: "units.csv", Sha256: strings.Repeat("0", 64)}}})
	stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Chunk{Chunk: []byte(units[:40])}})
	_, err = stream.CloseAndReceive()
	ncWantCode(t, err, connect.CodeInvalidArgument)
	// A county this node does not serve.
	_, err = ncImport(ctx, c, ncUpload{county: "371526", dataset: "d", fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: []byte(units)})
	ncWantCode(t, err, connect.CodeNotFound)
	ncNothingStored(t, n)
}

// ncNothingStored fails t if any dataset, row or audit entry is stored.
func ncNothingStored(t testing.TB, n *ncNode) {
	t.Helper()
	for _, table := range []string{"dataset", "dataset_file", "dataset_unit", "dataset_contribution", "import_request", "audit_log"} {
		var count int
		if err := n.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != 0 {
			t.Errorf("%s has %d rows after a refused import", table, count)
		}
	}
}

func TestImportRefusesUnitsOfAnotherCounty(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	for _, tc := range []struct {
		name, header, column string
	}{
		{"english", "uscc,name,county,industry,size,status,headcount_start,headcount_end", "county"},
		{"chinese", "统一社会信用代码,单位名称,参保地,行业代码,企业划型,登记状态,上年初参保人数,上年末参保人数", "参保地"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.header + "\n" +
				"91440300708461136T,东昌府单位,371502,6110,small,active,20,18\n" +
				"914403001922038216,阳谷单位,371521,6110,micro,active,5,5\n" +
				"91350200776049653A,东昌府单位二,东昌府区,5211,large,active,500,490\n" +
				"91440101MA5CJQ4N59,茌平单位,371523,1311,medium,active,100,100\n"
			_, err := ncImport(context.Background(), c, ncUpload{dataset: tc.name, fileName: "units.csv",
				kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: []byte(data)})
			ncWantCode(t, err, connect.CodeInvalidArgument)
			got := rpc.RowViolations(err)
			if len(got) != 2 || got[0].GetLine() != 3 || got[1].GetLine() != 5 || got[0].GetColumn() != tc.column ||
				got[1].GetColumn() != tc.column || !strings.Contains(got[1].GetReason(), "371503") {
				t.Errorf("violations %v, want lines 3 and 5 on column %s", got, tc.column)
			}
		})
	}
	ncNothingStored(t, n)
}

func TestImportWarnsOfRowsOfUnknownUnits(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	dir := ncHandmade(t, ncCounty)
	read, err := source.ReadDir(dir, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want []source.Warning
	for _, w := range read.Warnings {
		if w.Column == "uscc" {
			want = append(want, w)
		}
	}
	if len(want) == 0 {
		t.Fatal("the handmade files filtered to one county should have rows of other counties' units")
	}

	// Units first: each later file warns of its own rows.
	responses := ncImportDir(t, c, ncCounty, dir, "units-first")
	var got []*wengangv1.RowViolation
	for _, res := range responses {
		if res.GetFile().GetWarningCount() != int64(len(res.GetWarnings())) {
			t.Errorf("%s: warning count %d, %d listed", res.GetFile().GetFileName(), res.GetFile().GetWarningCount(), len(res.GetWarnings()))
		}
		if res.GetFile().GetKind() == wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS {
			// The units file warns of organization codes (GB 11714) only.
			if w := res.GetWarnings(); len(w) != 1 || w[0].GetLine() != 4 || !strings.Contains(w[0].GetReason(), "GB 11714") {
				t.Errorf("units warnings %v, want the organization code of line 4", w)
			}
			continue
		}
		got = append(got, res.GetWarnings()...)
	}
	ncSameWarnings(t, got, want)

	// Units last: nothing tells at import; sealing names them all.
	for _, base := range []string{"contributions", "accounts", "exclusions", "units"} {
		data, _ := os.ReadFile(filepath.Join(dir, base+".csv"))
		res, err := ncImport(ctx, c, ncUpload{dataset: "units-last", fileName: base + ".csv", kind: ncKinds[base], data: data})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetWarnings()) != 0 && base != "units" {
			t.Errorf("%s: warnings %v before any units", base, res.GetWarnings())
		}
	}
	sealed, err := c.Import.SealDataset(ctx, connect.NewRequest(&wengangv1.SealDatasetRequest{County: ncCounty,
		Dataset: &wengangv1.SealDatasetRequest_DatasetName{DatasetName: "units-last"}}))
	if err != nil {
		t.Fatal(err)
	}
	if sealed.Msg.GetWarningCount() != int64(len(want)) {
		t.Errorf("seal: warning count %d, want %d", sealed.Msg.GetWarningCount(), len(want))
	}
	ncSameWarnings(t, sealed.Msg.GetWarnings(), want)
}

// ncSameWarnings fails t unless got are the warnings want, in order.
func ncSameWarnings(t testing.TB, got []*wengangv1.RowViolation, want []source.Warning) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("warnings %v, want %v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.GetFile() != w.File || g.GetLine() != int64(w.Line) || g.GetColumn() != w.Column || g.GetReason() != w.Reason {
			t.Errorf("warning %d: %v, want %v", i, g, w)
		}
	}
}

func TestImportReplaysAndReplaces(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	dir := ncHandmade(t, ncCounty)
	units, _ := os.ReadFile(filepath.Join(dir, "units.csv"))
	up := ncUpload{dataset: "d", fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: units, key: "k1"}
	first, err := ncImport(ctx, c, up)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ncImport(ctx, n.as("tok-other", "", "county_clerk"), up)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(first, again) {
		t.Errorf("replay answered %v, first %v", again, first)
	}
	// The same key for other bytes is refused.
	other := up
	other.data = []byte(strings.SplitAfterN(string(units), "\n", 3)[0] + strings.SplitAfterN(string(units), "\n", 3)[1])
	_, err = ncImport(ctx, c, other)
	ncWantCode(t, err, connect.CodeAlreadyExists)

	// Without a key, another units file replaces the first, rows and all.
	other.key = ""
	res, err := ncImport(ctx, c, other)
	if err != nil {
		t.Fatal(err)
	}
	if files := res.GetDataset().GetFiles(); len(files) != 1 || files[0].GetRowCount() != 1 || res.GetDataset().GetUnitCount() != 1 {
		t.Errorf("after replacing: %v", res.GetDataset())
	}
	var rows int
	n.pool.QueryRow(ctx, `SELECT count(*) FROM dataset_unit`).Scan(&rows)
	if rows != 1 {
		t.Errorf("%d unit rows after replacing the file, want 1", rows)
	}
	var imports int
	n.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = '/wengang.v1.ImportService/Import'`).Scan(&imports)
	if imports != 2 {
		t.Errorf("%d import audit entries, want 2 (the replay adds none)", imports)
	}
	// A replay after the dataset changed still gets the first answer.
	if again, err = ncImport(ctx, c, up); err != nil || !proto.Equal(first, again) {
		t.Errorf("late replay: %v, %v", again, err)
	}
}

func TestImportAndSealPreconditions(t *testing.T) {
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	ctx := context.Background()
	dir := ncHandmade(t, ncCounty)
	for _, base := range []string{"units", "contributions"} {
		data, _ := os.ReadFile(filepath.Join(dir, base+".csv"))
		if _, err := ncImport(ctx, c, ncUpload{dataset: "d", fileName: base + ".csv", kind: ncKinds[base], data: data}); err != nil {
			t.Fatal(err)
		}
	}
	seal := &wengangv1.SealDatasetRequest{County: ncCounty, Dataset: &wengangv1.SealDatasetRequest_DatasetName{DatasetName: "d"}}
	_, err := c.Import.SealDataset(ctx, connect.NewRequest(seal))
	ncWantCode(t, err, connect.CodeFailedPrecondition)
	if !strings.Contains(err.Error(), "accounts, exclusions") {
		t.Errorf("%v: the message should name the missing kinds", err)
	}
	for _, base := range []string{"accounts", "exclusions"} {
		data, _ := os.ReadFile(filepath.Join(dir, base+".csv"))
		if _, err := ncImport(ctx, c, ncUpload{dataset: "d", fileName: base + ".csv", kind: ncKinds[base], data: data}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.Import.SealDataset(ctx, connect.NewRequest(seal))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Import.SealDataset(ctx, connect.NewRequest(seal))
	if err != nil || !proto.Equal(first.Msg.GetDataset(), again.Msg.GetDataset()) {
		t.Errorf("sealing again: %v, %v", again, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "units.csv"))
	_, err = ncImport(ctx, c, ncUpload{dataset: "d", fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: data})
	ncWantCode(t, err, connect.CodeFailedPrecondition)

	// Listing: newest first, by state, a page at a time.
	for _, name := range []string{"e", "f", "g"} {
		if _, err := ncImport(ctx, c, ncUpload{dataset: name, fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: data}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	req := &wengangv1.ListDatasetsRequest{County: ncCounty, PageSize: 2}
	for {
		res, err := c.Import.ListDatasets(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range res.Msg.GetDatasets() {
			names = append(names, d.GetName())
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if strings.Join(names, ",") != "g,f,e,d" {
		t.Errorf("datasets %v, want g, f, e, d", names)
	}
	res, err := c.Import.ListDatasets(ctx, connect.NewRequest(&wengangv1.ListDatasetsRequest{County: ncCounty, State: wengangv1.DatasetState_DATASET_STATE_SEALED}))
	if err != nil || len(res.Msg.GetDatasets()) != 1 || res.Msg.GetDatasets()[0].GetName() != "d" {
		t.Errorf("sealed datasets: %v, %v", res, err)
	}
	_, err = c.Import.ListDatasets(ctx, connect.NewRequest(&wengangv1.ListDatasetsRequest{County: ncCounty, PageToken: "garbage"}))
	ncWantCode(t, err, connect.CodeInvalidArgument)
	// Another county sees none of them.
	res, err = c.Import.ListDatasets(ctx, connect.NewRequest(&wengangv1.ListDatasetsRequest{County: ncOtherCounty}))
	if err != nil || len(res.Msg.GetDatasets()) != 0 {
		t.Errorf("datasets of %s: %v, %v", ncOtherCounty, res, err)
	}
	_, err = c.Import.GetDataset(ctx, connect.NewRequest(&wengangv1.GetDatasetRequest{County: ncOtherCounty,
		Dataset: &wengangv1.GetDatasetRequest_DatasetId{DatasetId: first.Msg.GetDataset().GetDatasetId()}}))
	ncWantCode(t, err, connect.CodeNotFound)
}

func TestImportTooLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("streams more than 512 MiB")
	}
	t.Parallel()
	n := ncStart(t)
	c := n.clerk()
	stream := c.Import.Import(context.Background())
	err := stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{County: ncCounty, Dataset: "big",
		Kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_CONTRIBUTIONS, FileName: "contributions.csv"}}})
	chunk := make([]byte, 1<<20)
	for sent := 0; err == nil && sent <= MaxImportBytes; sent += len(chunk) {
		err = stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Chunk{Chunk: chunk}})
	}
	_, err = stream.CloseAndReceive()
	ncWantCode(t, err, connect.CodeResourceExhausted)
	ncNothingStored(t, n)
}

// ncContributionsCSV returns a contributions file of n rows (25 months of
// n/25 units, one row a month) and a units file of its units.
func ncContributionsCSV(tb testing.TB, n int) (contributions, units []byte) {
	tb.Helper()
	var c, u strings.Builder
	c.Grow(n * 56)
	c.WriteString("uscc,period,employer,employee,late_fee,paid_on\n")
	u.WriteString("uscc,name,county,industry,size,status,headcount_start,headcount_end\n")
	for i := 0; c.Len() == 0 || i*25 < n; i++ {
		body := fmt.Sprintf("91371502MA%07d", i)
		check, err := uscc.CheckChar(body)
		if err != nil {
			tb.Fatal(err)
		}
		code := body + string(check)
		fmt.Fprintf(&u, "%s,单位%d,371502,6110,small,active,10,10\n", code, i)
		for m := 0; m < 25 && i*25+m < n; m++ {
			period := 202001 + m%12 + m/12*100
			fmt.Fprintf(&c, "%s,%d,%d.%02d,120.00,,2022-01-%02d\n", code, period, 200+i%300, m, 1+m)
		}
	}
	return []byte(c.String()), []byte(u.String())
}

// BenchmarkImportContributions imports 1,000,000 contribution rows through
// the Import RPC (streamed over loopback HTTP/2, hashed, parsed, checked
// against the dataset's units, copied) and, in the same iteration, copies
// the same rows into the same table with a bare CopyFrom. It reports both
// in rows/s and their ratio (bare time over RPC time; target ≥ 0.5).
func BenchmarkImportContributions(b *testing.B) {
	const rows = 1_000_000
	n := ncStart(b, ncCounty)
	c := n.clerk()
	ctx := context.Background()
	data, units := ncContributionsCSV(b, rows)
	parsed, err := source.Parse(source.Contributions, "contributions.csv", data, source.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cols := []string{"county", "dataset_id", "seq", "uscc", "period", "employer_fen", "employee_fen", "late_fee_fen", "paid_on", "line"}
	var rpcTime, copyTime time.Duration
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("bench-%d", i)
		b.StopTimer()
		if _, err := ncImport(ctx, c, ncUpload{dataset: name, fileName: "units.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS, data: units}); err != nil {
			b.Fatal(err)
		}
		d, err := n.store.CreateDataset(ctx, ncCounty, name+"-bare")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		viaRPC := func() {
			start := time.Now()
			res, err := ncImport(ctx, c, ncUpload{dataset: name, fileName: "contributions.csv", kind: wengangv1.SourceFileKind_SOURCE_FILE_KIND_CONTRIBUTIONS,
				data: data, chunk: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			rpcTime += time.Since(start)
			if res.GetFile().GetRowCount() != rows || res.GetFile().GetWarningCount() != 0 {
				b.Fatalf("imported %v", res.GetFile())
			}
		}
		bare := func() {
			start := time.Now()
			copied, err := n.pool.CopyFrom(ctx, pgx.Identifier{"dataset_contribution"}, cols, pgx.CopyFromSlice(rows, func(j int) ([]any, error) {
				r := &parsed.Contributions[j]
				var paid any
				if r.PaidOn != 0 {
					paid = time.Date(r.PaidOn.Year(), time.Month(r.PaidOn.Month()), r.PaidOn.Day(), 0, 0, 0, 0, time.UTC)
				}
				return []any{ncCounty, d.ID, int32(j + 1), r.USCC, int32(r.Period), r.EmployerFen, r.EmployeeFen, r.LateFeeFen, paid, parsed.Lines[j]}, nil
			}))
			copyTime += time.Since(start)
			if err != nil || copied != rows {
				b.Fatalf("bare copy: %d rows, %v", copied, err)
			}
		}
		// Take turns at going first, so that neither always follows the
		// other's writes (checkpoints, autovacuum).
		if i%2 == 0 {
			viaRPC()
			bare()
		} else {
			bare()
			viaRPC()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rows)*float64(b.N)/rpcTime.Seconds(), "rpc-rows/s")
	b.ReportMetric(float64(rows)*float64(b.N)/copyTime.Seconds(), "copy-rows/s")
	b.ReportMetric(copyTime.Seconds()/rpcTime.Seconds(), "ratio")
}
