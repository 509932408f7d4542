package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"wengang/internal/gen"
)

// run runs a wengang command in-process and returns its exit status and
// output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	code := Main(env, Offline(), args)
	return code, stdout.String(), stderr.String()
}

var chineseHeaders = map[string]string{
	"uscc": "统一社会信用代码", "name": "单位名称", "county": "参保地", "industry": "行业代码", "size": "企业划型",
	"status": "登记状态", "headcount_start": "上年初参保人数", "headcount_end": "上年末参保人数", "mobile": "联系电话",
	"period": "费款所属期", "employer": "单位缴费", "employee": "个人缴费", "late_fee": "滞纳金", "paid_on": "到账日期",
	"kind": "账户类型", "bank": "开户行", "bank_code": "联行号", "account_no": "账号", "account_name": "户名",
	"list": "名单", "source": "来源", "listed_on": "列入日期", "removed_on": "移出日期",
}

var chineseValues = map[string]map[string]string{
	"size":   {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"},
	"status": {"active": "存续", "deregistered": "注销", "revoked": "吊销"},
	"kind":   {"corporate": "对公账户", "social_insurance": "社保缴费账户"},
	"list":   {"credit": "严重违法失信", "zombie": "僵尸企业", "industry_policy": "产业政策", "environment": "环保"},
}

// variant rewrites the handmade CSV files of src into dst: Chinese headers
// and values, columns in another order, another encoding, or XLSX.
type variant struct {
	name     string
	chinese  bool
	shuffle  bool
	encoding string // "", "bom", "gb18030"
	xlsx     bool
	crlf     bool
}

func writeVariant(t *testing.T, src, dst string, v variant) {
	t.Helper()
	for _, kind := range []string{"units", "contributions", "accounts", "exclusions"} {
		data, err := os.ReadFile(filepath.Join(src, kind+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		header := recs[0]
		if v.chinese {
			for r := 1; r < len(recs); r++ {
				for c, key := range header {
					if to, ok := chineseValues[key][recs[r][c]]; ok {
						recs[r][c] = to
					}
				}
			}
			for c, key := range header {
				recs[0][c] = chineseHeaders[key]
			}
		}
		if v.shuffle {
			perm := rand.New(rand.NewPCG(1, uint64(len(kind)))).Perm(len(header))
			for r := range recs {
				row := make([]string, len(perm))
				for i, p := range perm {
					row[i] = recs[r][p]
				}
				recs[r] = row
			}
		}
		var out []byte
		name := kind + ".csv"
		if v.xlsx {
			name = kind + ".xlsx"
			f := excelize.NewFile()
			for r, row := range recs {
				for c, val := range row {
					cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
					if err := f.SetCellStr("Sheet1", cell, val); err != nil {
						t.Fatal(err)
					}
				}
			}
			var buf bytes.Buffer
			if err := f.Write(&buf); err != nil {
				t.Fatal(err)
			}
			out = buf.Bytes()
		} else {
			var buf bytes.Buffer
			w := csv.NewWriter(&buf)
			w.UseCRLF = v.crlf
			if err := w.WriteAll(recs); err != nil {
				t.Fatal(err)
			}
			out = buf.Bytes()
			switch v.encoding {
			case "bom":
				out = append([]byte("\uFEFF"), out...)
			case "gb18030":
				if out, err = simplifiedchinese.GB18030.NewEncoder().Bytes(out); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dst, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The handmade files' expected results were worked out by hand from
// DOMAIN.md, not produced by this program. Every encoding and header
// variant of the same data gives them byte for byte.
func TestScreenHandmade(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("testdata/handmade/expected-results.csv")
	if err != nil {
		t.Fatal(err)
	}
	variants := []variant{
		{name: "as written"},
		{name: "utf-8 bom", encoding: "bom"},
		{name: "gb18030, chinese", encoding: "gb18030", chinese: true},
		{name: "chinese, shuffled, crlf", chinese: true, shuffle: true, crlf: true},
		{name: "shuffled, bom", shuffle: true, encoding: "bom"},
		{name: "xlsx", xlsx: true},
		{name: "xlsx, chinese, shuffled", xlsx: true, chinese: true, shuffle: true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeVariant(t, "testdata/handmade", dir, v)
			out := filepath.Join(t.TempDir(), "results.csv")
			code, stdout, stderr := run(t, "screen", "--dir", dir, "--as-of", "2022-04-28", "--out", out)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("results differ:\n%s\nwant:\n%s", got, want)
			}
			if !strings.Contains(stderr, "913715007000000001 is not a unit") {
				t.Errorf("the unknown unit's account row was not reported: %q", stderr)
			}
			if !strings.Contains(stdout, "371526") || !strings.Contains(stdout, "17653.36") {
				t.Errorf("per-county totals missing: %s", stdout)
			}
		})
	}
}

// Generated data in every format screens to the same results.
func TestScreenGeneratedFormats(t *testing.T) {
	t.Parallel()
	ds, err := gen.Generate(gen.Config{Counties: []string{"371502", "371503"}, Units: 300, Seed: 9, PolicyYear: 2021, AsOf: 20220428})
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for _, f := range []gen.Format{
		{Encoding: gen.UTF8},
		{Encoding: gen.UTF8BOM, Chinese: true},
		{Encoding: gen.GB18030, Chinese: true, Shuffle: true},
		{Encoding: gen.UTF8, Grouping: true, Shuffle: true},
		{XLSX: true},
		{XLSX: true, Chinese: true, Shuffle: true},
	} {
		dir := t.TempDir()
		if err := gen.Write(dir, ds, f); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "results.csv")
		if code, _, stderr := run(t, "screen", "--dir", dir, "--as-of", "2022-04-28", "--out", out); code != 0 {
			t.Fatalf("%+v: exit %d: %s", f, code, stderr)
		}
		got, _ := os.ReadFile(out)
		if first == nil {
			first = got
			if n := bytes.Count(got, []byte{'\n'}); n != 601 {
				t.Fatalf("%d lines of results, want 601", n)
			}
			continue
		}
		if !bytes.Equal(got, first) {
			t.Fatalf("format %+v gives other results", f)
		}
	}
}

func TestScreenBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeVariant(t, "testdata/handmade", dir, variant{})
	appendTo := func(name, text string) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	appendTo("units.csv", "91440300708461136T,重复,371502,6110,small,active,1,1,\n")
	appendTo("contributions.csv", "91440300708461136T,202101,1.001,0,,2022-01-15\n91440300708461136T,2021-13,1,0,,2022-01-15\n")
	appendTo("exclusions.csv", "91440300708461136T,blacklist,x,2021-01-01,\n")
	out := filepath.Join(dir, "results.csv")
	code, _, stderr := run(t, "screen", "--dir", dir, "--as-of", "2022-04-28", "--out", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"units.csv:12: uscc: unit 91440300708461136T already appears on line 2",
		`contributions.csv:131: employer: invalid amount "1.001": more than two decimals`,
		`contributions.csv:132: period: "2021-13" is not a period`,
		`exclusions.csv:6: list: "blacklist" is not a list`,
		"4 bad row(s); nothing written",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("results file exists after bad input: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".results.csv*")); len(matches) > 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

func TestScreenUsage(t *testing.T) {
	t.Parallel()
	if code, _, _ := run(t, "screen", "--dir", "x"); code != 2 {
		t.Errorf("missing flags: exit %d, want 2", code)
	}
	if code, _, _ := run(t, "screen", "--dir", "x", "--as-of", "2022-02-30", "--out", "y"); code != 2 {
		t.Errorf("bad date: exit %d, want 2", code)
	}
	if code, _, stderr := run(t, "screen", "--dir", t.TempDir(), "--as-of", "2022-04-28", "--out", filepath.Join(t.TempDir(), "r.csv")); code != 1 || !strings.Contains(stderr, "units.csv: missing") {
		t.Errorf("empty dir: exit %d: %s", code, stderr)
	}
	if code, _, _ := run(t, "nonsense"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
}

func TestWorkdays(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ from, count, want string }{
		{"2022-04-25", "5", "2022-04-29\n"},
		{"2022-04-28", "5", "2022-05-07\n"},
		{"2022-05-30", "5", "2022-06-06\n"},
		{"2025-09-30", "1", "2025-09-30\n"},
		{"2025-10-01", "1", "2025-10-09\n"},
	} {
		code, out, stderr := run(t, "workdays", "--from", tt.from, "--count", tt.count)
		if code != 0 || out != tt.want {
			t.Errorf("workdays %s %s = %d %q %q, want %q", tt.from, tt.count, code, out, stderr, tt.want)
		}
	}
	if code, _, stderr := run(t, "workdays", "--from", "2026-12-28", "--count", "5"); code != 1 || !strings.Contains(stderr, "no working-day calendar") {
		t.Errorf("into 2027: exit %d %q", code, stderr)
	}
	if code, _, _ := run(t, "workdays", "--from", "2022-04-28"); code != 2 {
		t.Errorf("no count: exit %d, want 2", code)
	}
}

func TestUSCC(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, "uscc", "91440300708461136T", "91350203M0001QAY9B", "91440300708461136S", "9144030A708461136T", "91440300708461136", "91440101ma5cjq4n59")
	want := `91440300708461136T valid
91350203M0001QAY9B hold
91440300708461136S bad: character 18 'S' is not allowed
9144030A708461136T bad: character 8 'A' is not a digit of the region code
91440300708461136 bad: 17 characters, need 18
91440101ma5cjq4n59 valid
`
	if code != 0 || out != want {
		t.Fatalf("uscc: exit %d\n%s\nwant\n%s", code, out, want)
	}
}

func TestGenDeterministic(t *testing.T) {
	t.Parallel()
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if code, _, stderr := run(t, "gen", "--out", dir, "--counties", "371502,371521", "--units", "50", "--seed", "3"); code != 0 {
			t.Fatalf("gen: %s", stderr)
		}
	}
	for _, name := range []string{"units.csv", "contributions.csv", "accounts.csv", "exclusions.csv"} {
		x, err1 := os.ReadFile(filepath.Join(a, name))
		y, err2 := os.ReadFile(filepath.Join(b, name))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) || len(x) == 0 {
			t.Fatalf("%s differs between two runs with the same seed", name)
		}
	}
}
