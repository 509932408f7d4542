package gen

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"wengang/internal/fault"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/policy/uscc"
)

// formats are the variants Write must support, named for test output.
func formats() map[string]Format {
	out := make(map[string]Format)
	for _, enc := range []Encoding{UTF8, UTF8BOM, GB18030} {
		for _, zh := range []bool{false, true} {
			for _, shuffle := range []bool{false, true} {
				for _, group := range []bool{false, true} {
					f := Format{Encoding: enc, Chinese: zh, Shuffle: shuffle, Grouping: group, Seed: 42}
					out[fmt.Sprintf("csv/%v/zh=%v/shuffle=%v/group=%v", enc, zh, shuffle, group)] = f
				}
			}
		}
	}
	for _, zh := range []bool{false, true} {
		for _, shuffle := range []bool{false, true} {
			f := Format{XLSX: true, Chinese: zh, Shuffle: shuffle, Grouping: zh, Seed: 7}
			out[fmt.Sprintf("xlsx/zh=%v/shuffle=%v", zh, shuffle)] = f
		}
	}
	out["csv/plain"] = Format{Plain: true}
	out["csv/seed1"] = Format{Seed: 1}
	out["xlsx/plain"] = Format{XLSX: true, Plain: true}
	return out
}

var (
	smallOnce sync.Once
	smallDS   *refund.Dataset
)

// small is a dataset with a 茌平区 county (legacy codes) and enough rows
// that every spelling variant occurs.
func small(t testing.TB) *refund.Dataset {
	smallOnce.Do(func() {
		ds, err := Generate(config(300, 5, "371502", "371503"))
		if err != nil {
			t.Fatal(err)
		}
		smallDS = ds
	})
	return smallDS
}

var fileNames = []string{"units", "contributions", "accounts", "exclusions"}

func ext(f Format) string {
	if f.XLSX {
		return ".xlsx"
	}
	return ".csv"
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, e := range entries {
		if e.IsDir() {
			out[e.Name()+"/"] = nil
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestWriteIsDeterministic(t *testing.T) {
	t.Parallel()
	ds := small(t)
	other, err := Generate(config(300, 6, "371502", "371503"))
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range formats() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
			for _, w := range []struct {
				dir string
				ds  *refund.Dataset
			}{{a, ds}, {b, ds}, {c, other}} {
				if err := Write(w.dir, w.ds, f); err != nil {
					t.Fatal(err)
				}
			}
			fa, fb, fc := readDir(t, a), readDir(t, b), readDir(t, c)
			if len(fa) != 4 {
				t.Fatalf("wrote %d files, want 4", len(fa))
			}
			for _, n := range fileNames {
				file := n + ext(f)
				if !bytes.Equal(fa[file], fb[file]) {
					t.Errorf("%s differs between two writes of the same dataset", file)
				}
				if bytes.Equal(fa[file], fc[file]) {
					t.Errorf("%s is the same for two seeds", file)
				}
			}
		})
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]int)
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// readRecords reads a written file back, checking its encoding, byte-order
// mark, line ends and, in XLSX, that every cell is a string.
func readRecords(t *testing.T, path string, f Format) [][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.XLSX {
		return readXLSX(t, data)
	}
	bom := bytes.HasPrefix(data, []byte("\xEF\xBB\xBF"))
	if bom != (f.Encoding == UTF8BOM) {
		t.Fatalf("%s: byte-order mark %v with encoding %v", path, bom, f.Encoding)
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	crlf := bytes.Contains(data, []byte("\r\n"))
	if crlf != (f.Encoding != UTF8) || (crlf && bytes.Count(data, []byte("\n")) != bytes.Count(data, []byte("\r\n"))) {
		t.Fatalf("%s: mixed or unexpected line ends for %v", path, f.Encoding)
	}
	if f.Encoding == GB18030 {
		if utf8.Valid(data) && bytes.ContainsFunc(data, func(r rune) bool { return r >= 0x80 }) {
			t.Fatalf("%s: GB18030 file is UTF-8", path)
		}
		data, err = simplifiedchinese.GB18030.NewDecoder().Bytes(data)
		if err != nil {
			t.Fatal(err)
		}
	} else if !utf8.Valid(data) {
		t.Fatalf("%s: not UTF-8", path)
	}
	records, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return records
}

var cellTag = regexp.MustCompile(`<c [^>]*>`)

func readXLSX(t *testing.T, data []byte) [][]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, zf := range zr.File {
		if !strings.HasPrefix(zf.Name, "xl/worksheets/") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		xml, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cellTag.FindAll(xml, -1) {
			if !bytes.Contains(c, []byte(`t="inlineStr"`)) {
				t.Fatalf("cell %s is not a string", c)
			}
		}
	}
	x, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(x.GetSheetName(0))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(rows); i++ {
		for len(rows[i]) < len(rows[0]) { // GetRows drops trailing empty cells
			rows[i] = append(rows[i], "")
		}
	}
	return rows
}

var (
	plainAmount   = regexp.MustCompile(`^[0-9]+\.[0-9]{2}$`)
	groupedAmount = regexp.MustCompile(`^[0-9]{1,3}(,[0-9]{3})*\.[0-9]{2}$`)
)

// spellings counts the non-canonical spellings met while reading back.
type spellings struct{ uscc, section, legacy int }

// readBack parses the four files with the plainest reader that follows
// DOMAIN.md and returns the dataset they hold.
func readBack(t *testing.T, dir string, f Format) (*refund.Dataset, spellings) {
	t.Helper()
	var sp spellings
	ds := &refund.Dataset{}
	enums := func(zh bool) (map[string]refund.Size, map[string]refund.Status, map[string]refund.AccountKind, map[string]refund.List) {
		if zh {
			return map[string]refund.Size{"": 0, "大型": 1, "中型": 2, "小型": 3, "微型": 4},
				map[string]refund.Status{"存续": 1, "注销": 2, "吊销": 3},
				map[string]refund.AccountKind{"对公账户": 1, "社保缴费账户": 2},
				map[string]refund.List{"严重违法失信": 1, "僵尸企业": 2, "产业政策": 3, "环保": 4}
		}
		return map[string]refund.Size{"": 0, "large": 1, "medium": 2, "small": 3, "micro": 4},
			map[string]refund.Status{"active": 1, "deregistered": 2, "revoked": 3},
			map[string]refund.AccountKind{"corporate": 1, "social_insurance": 2},
			map[string]refund.List{"credit": 1, "zombie": 2, "industry_policy": 3, "environment": 4}
	}
	sizes, statuses, kinds, lists := enums(f.Chinese)
	zh := map[string]string{
		"uscc": "统一社会信用代码", "name": "单位名称", "county": "参保地", "industry": "行业代码", "size": "企业划型",
		"status": "登记状态", "headcount_start": "上年初参保人数", "headcount_end": "上年末参保人数", "mobile": "联系电话",
		"period": "费款所属期", "employer": "单位缴费", "employee": "个人缴费", "late_fee": "滞纳金", "paid_on": "到账日期",
		"kind": "账户类型", "bank": "开户行", "bank_code": "联行号", "account_no": "账号", "account_name": "户名",
		"list": "名单", "source": "来源", "listed_on": "列入日期", "removed_on": "移出日期",
	}
	periodStyle := ""
	for _, n := range fileNames {
		records := readRecords(t, filepath.Join(dir, n+ext(f)), f)
		checkHeader(t, n, f, records[0])
		col := make(map[string]int)
		for i, h := range records[0] {
			col[h] = i
		}
		for line, rec := range records[1:] {
			fail := func(format string, args ...any) {
				t.Fatalf("%s line %d: %s", n, line+2, fmt.Sprintf(format, args...))
			}
			get := func(key string) string {
				if f.Chinese {
					key = zh[key]
				}
				i, ok := col[key]
				if !ok {
					fail("no column %s", key)
				}
				return rec[i]
			}
			code := func() string {
				v := get("uscc")
				c := uscc.Normalize(v)
				if _, err := uscc.Check(c); err != nil {
					fail("USCC %q: %v", v, err)
				}
				if c != v {
					sp.uscc++
				}
				return c
			}
			amount := func(key string) int64 {
				v := get(key)
				re := plainAmount
				if f.Grouping {
					re = groupedAmount
				}
				if !re.MatchString(v) {
					fail("%s %q is not yuan with two decimals", key, v)
				}
				if !f.Grouping && len(v) > 7 && !plainAmount.MatchString(v) {
					fail("%s %q grouped", key, v)
				}
				fen, _ := strconv.ParseInt(strings.ReplaceAll(strings.ReplaceAll(v, ",", ""), ".", ""), 10, 64)
				return fen
			}
			date := func(key string, optional bool) civil.Date {
				v := get(key)
				if v == "" && optional {
					return 0
				}
				d, err := civil.ParseDate(v)
				if err != nil {
					fail("%s: %v", key, err)
				}
				return d
			}
			count := func(key string) int32 {
				v, err := strconv.Atoi(get(key))
				if err != nil {
					fail("%s: %v", key, err)
				}
				return int32(v)
			}
			switch n {
			case "units":
				u := refund.Unit{USCC: code(), Name: get("name"), County: get("county"), Industry: get("industry"), Mobile: get("mobile")}
				if u.County == "371523" {
					u.County = "371503"
					sp.legacy++
				}
				if len(u.Industry) == 5 {
					if u.Industry[0] != sectionOf(u.Industry[1:]) {
						fail("industry %q: wrong section letter", u.Industry)
					}
					u.Industry = u.Industry[1:]
					sp.section++
				}
				var ok1, ok2 bool
				u.Size, ok1 = sizes[get("size")]
				u.Status, ok2 = statuses[get("status")]
				if !ok1 || !ok2 {
					fail("size %q or status %q", get("size"), get("status"))
				}
				u.HeadcountStart, u.HeadcountEnd = count("headcount_start"), count("headcount_end")
				ds.Units = append(ds.Units, u)
			case "contributions":
				c := refund.Contribution{USCC: code()}
				p := get("period")
				style := "YYYYMM"
				if strings.Contains(p, "-") {
					style = "YYYY-MM"
				}
				if periodStyle != "" && style != periodStyle {
					fail("periods written both %s and %s", periodStyle, style)
				}
				periodStyle = style
				m, err := civil.ParseMonth(p)
				if err != nil {
					fail("%v", err)
				}
				c.Period = m
				c.EmployerFen, c.EmployeeFen, c.LateFeeFen = amount("employer"), amount("employee"), amount("late_fee")
				c.PaidOn = date("paid_on", true)
				ds.Contributions = append(ds.Contributions, c)
			case "accounts":
				k, ok := kinds[get("kind")]
				if !ok {
					fail("kind %q", get("kind"))
				}
				ds.Accounts = append(ds.Accounts, refund.Account{USCC: code(), Kind: k, Bank: get("bank"),
					BankCode: get("bank_code"), AccountNo: get("account_no"), AccountName: get("account_name")})
			case "exclusions":
				l, ok := lists[get("list")]
				if !ok {
					fail("list %q", get("list"))
				}
				ds.Exclusions = append(ds.Exclusions, refund.Exclusion{USCC: code(), List: l, Source: get("source"),
					ListedOn: date("listed_on", false), RemovedOn: date("removed_on", true)})
			}
		}
	}
	if f.Plain && periodStyle != "YYYYMM" {
		t.Errorf("plain periods written %s", periodStyle)
	}
	return ds, sp
}

// headers are the header rows of DOMAIN.md, written out here rather than
// taken from the package's tables.
var headers = map[string][2]string{
	"units": {"uscc,name,county,industry,size,status,headcount_start,headcount_end,mobile",
		"统一社会信用代码,单位名称,参保地,行业代码,企业划型,登记状态,上年初参保人数,上年末参保人数,联系电话"},
	"contributions": {"uscc,period,employer,employee,late_fee,paid_on",
		"统一社会信用代码,费款所属期,单位缴费,个人缴费,滞纳金,到账日期"},
	"accounts": {"uscc,kind,bank,bank_code,account_no,account_name",
		"统一社会信用代码,账户类型,开户行,联行号,账号,户名"},
	"exclusions": {"uscc,list,source,listed_on,removed_on",
		"统一社会信用代码,名单,来源,列入日期,移出日期"},
}

func checkHeader(t *testing.T, file string, f Format, got []string) {
	t.Helper()
	lang := 0
	if f.Chinese {
		lang = 1
	}
	want := strings.Split(headers[file][lang], ",")
	switch {
	case !f.Shuffle && !reflect.DeepEqual(got, want):
		t.Errorf("%s header %q, want %q", file, got, want)
	case f.Shuffle && reflect.DeepEqual(got, want):
		t.Errorf("%s: shuffled header in DOMAIN.md's order", file)
	case f.Shuffle && !sameSet(got, want):
		t.Errorf("%s header %q, want the columns %q in any order", file, got, want)
	}
}

// TestWriteRoundTrip reads every format back: the headers are DOMAIN.md's
// and the rows give back the dataset that was written, row for row.
func TestWriteRoundTrip(t *testing.T) {
	t.Parallel()
	ds := small(t)
	for name, f := range formats() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := Write(dir, ds, f); err != nil {
				t.Fatal(err)
			}
			got, sp := readBack(t, dir, f)
			for i, pair := range [][2]any{
				{got.Units, ds.Units}, {got.Contributions, ds.Contributions},
				{got.Accounts, ds.Accounts}, {got.Exclusions, ds.Exclusions},
			} {
				if !reflect.DeepEqual(pair[0], pair[1]) {
					t.Errorf("%s: read back differs from the dataset", fileNames[i])
				}
			}
			if f.Plain {
				if sp != (spellings{}) {
					t.Errorf("plain format spelled values differently: %+v", sp)
				}
			} else if sp.uscc == 0 || sp.section == 0 || sp.legacy == 0 {
				t.Errorf("spelling variants %+v: want some of each", sp)
			}
		})
	}
}

func TestWriteLargeAmountsGrouped(t *testing.T) {
	t.Parallel()
	ds := &refund.Dataset{Contributions: []refund.Contribution{
		{USCC: "91440300708461136T", Period: 202106, EmployerFen: 123456789, EmployeeFen: 5, LateFeeFen: 100000, PaidOn: 20210705},
	}}
	dir := t.TempDir()
	if err := Write(dir, ds, Format{Grouping: true, Plain: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "contributions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "uscc,period,employer,employee,late_fee,paid_on\n91440300708461136T,202106,\"1,234,567.89\",0.05,\"1,000.00\",2021-07-05\n"
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
}

func TestAppendYuan(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		fen           int64
		plain, groupd string
	}{
		{0, "0.00", "0.00"}, {5, "0.05", "0.05"}, {10, "0.10", "0.10"}, {100, "1.00", "1.00"},
		{99999, "999.99", "999.99"}, {100000, "1000.00", "1,000.00"}, {123456, "1234.56", "1,234.56"},
		{100000000, "1000000.00", "1,000,000.00"}, {12345678901, "123456789.01", "123,456,789.01"},
	} {
		if got := string(appendYuan(nil, c.fen, false)); got != c.plain {
			t.Errorf("%d fen: %q, want %q", c.fen, got, c.plain)
		}
		if got := string(appendYuan(nil, c.fen, true)); got != c.groupd {
			t.Errorf("%d fen grouped: %q, want %q", c.fen, got, c.groupd)
		}
	}
}

// TestWriteFailureChangesNothing checks that a refused write leaves the
// files already there as they were and no temporary file behind.
func TestWriteFailureChangesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ds := small(t)
	if err := Write(dir, ds, Format{XLSX: true}); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, ds, Format{}); err != nil {
		t.Fatal(err)
	}
	before := readDir(t, dir)
	if len(before) != 8 {
		t.Fatalf("%d files after two writes, want 8", len(before))
	}

	huge := &refund.Dataset{Units: ds.Units, Contributions: make([]refund.Contribution, MaxXLSXRows+1)}
	for i := range huge.Contributions {
		huge.Contributions[i] = ds.Contributions[i%len(ds.Contributions)]
	}
	if err := Write(dir, huge, Format{XLSX: true}); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("writing %d rows to XLSX: error %v, want fault.ErrInvalid", len(huge.Contributions), err)
	}
	if err := Write(dir, ds, Format{Encoding: 9}); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("unknown encoding: error %v, want fault.ErrInvalid", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "other", "accounts.csv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "other"), ds, Format{}); err == nil {
		t.Error("writing over a directory: no error")
	}
	if got := readDir(t, filepath.Join(dir, "other")); len(got) != 1 {
		t.Errorf("a failed write left %d entries, want only the directory in the way", len(got))
	}
	after := readDir(t, dir)
	delete(after, "other/")
	if !reflect.DeepEqual(before, after) {
		t.Error("a failed write changed the files there")
	}

	// A file not in the way is replaced whole.
	if err := os.WriteFile(filepath.Join(dir, "units.csv"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, ds, Format{}); err != nil {
		t.Fatal(err)
	}
	after = readDir(t, dir)
	delete(after, "other/")
	if !reflect.DeepEqual(after, before) {
		t.Error("rewriting did not give the same files")
	}
	fi, err := os.Stat(filepath.Join(dir, "units.csv"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("units.csv mode %v, %v; want 0644", fi.Mode(), err)
	}
}
