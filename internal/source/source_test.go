package source

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"wengang/policy/civil"
	"wengang/policy/refund"
)

const unitsCSV = `uscc,name,county,industry,size,status,headcount_start,headcount_end,mobile
91440300708461136T,"聊城市东昌府区福满楼餐饮有限公司",371502,F5211,small,active,20,18,13800000000
91350203M0001QAY9B,聊城市茌平区顺达物流有限公司,371523,5411,,deregistered,5,5,
`

const unitsChinese = `上年末参保人数,统一社会信用代码,单位名称,参保地,行业代码,联系电话,企业划型,登记状态,上年初参保人数
18,91440300708461136T,聊城市东昌府区福满楼餐饮有限公司,东昌府区,F5211,13800000000,小型,存续,20
5,91350203m0001qay9b,聊城市茌平区顺达物流有限公司,371503,5411,,,注销,5
`

const contributionsCSV = `uscc,period,employer,employee,late_fee,paid_on
91440300708461136T,202101,"1,234.56",12.3,,2021-02-10
91440300708461136T,2021-02,0.05,0,1.00,
91350203M0001QAY9B,202012,100,50,0,2021-01-15
`

func wantUnits() []refund.Unit {
	return []refund.Unit{
		{USCC: "91440300708461136T", Name: "聊城市东昌府区福满楼餐饮有限公司", County: "371502", Industry: "5211",
			Size: refund.SizeSmall, Status: refund.StatusActive, HeadcountStart: 20, HeadcountEnd: 18, Mobile: "13800000000"},
		{USCC: "91350203M0001QAY9B", Name: "聊城市茌平区顺达物流有限公司", County: "371503", Industry: "5411",
			Size: refund.SizeUnknown, Status: refund.StatusDeregistered, HeadcountStart: 5, HeadcountEnd: 5},
	}
}

func gb18030(t *testing.T, s string) []byte {
	t.Helper()
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func xlsxOf(t *testing.T, csvText string) []byte {
	t.Helper()
	recs := newCSVRecords([]byte(csvText))
	f := excelize.NewFile()
	defer f.Close()
	for row := 1; ; row++ {
		fields, _, err := recs.next()
		if err != nil {
			break
		}
		for i, v := range fields {
			cell, _ := excelize.CoordinatesToCellName(i+1, row)
			if err := f.SetCellStr("Sheet1", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestUnitsVariants(t *testing.T) {
	t.Parallel()
	variants := []struct {
		name string
		file string
		data []byte
		enc  Encoding
	}{
		{"utf-8", "units.csv", []byte(unitsCSV), UTF8},
		{"utf-8 bom", "units.csv", append([]byte("\uFEFF"), unitsCSV...), UTF8BOM},
		{"gb18030", "units.csv", gb18030(t, unitsCSV), GB18030},
		{"chinese headers, shuffled", "units.csv", []byte(unitsChinese), UTF8},
		{"chinese headers, gb18030, crlf", "units.csv", gb18030(t, strings.ReplaceAll(unitsChinese, "\n", "\r\n")), GB18030},
		{"xlsx", "units.xlsx", xlsxOf(t, unitsCSV), 0},
		{"xlsx chinese", "units.xlsx", xlsxOf(t, unitsChinese), 0},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			tab, err := Parse(Units, v.file, v.data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tab.Units, wantUnits()) {
				t.Fatalf("units = %+v\nwant %+v", tab.Units, wantUnits())
			}
			if tab.File.Encoding != v.enc || tab.File.Rows != 2 || !reflect.DeepEqual(tab.Lines, []int32{2, 3}) {
				t.Fatalf("file = %+v lines %v", tab.File, tab.Lines)
			}
		})
	}
}

func TestContributions(t *testing.T) {
	t.Parallel()
	want := []refund.Contribution{
		{USCC: "91440300708461136T", Period: 202101, EmployerFen: 123456, EmployeeFen: 1230, PaidOn: 20210210},
		{USCC: "91440300708461136T", Period: 202102, EmployerFen: 5, LateFeeFen: 100},
		{USCC: "91350203M0001QAY9B", Period: 202012, EmployerFen: 10000, EmployeeFen: 5000, PaidOn: 20210115},
	}
	for _, name := range []string{"contributions.csv", "contributions.xlsx"} {
		data := []byte(contributionsCSV)
		if strings.HasSuffix(name, ".xlsx") {
			data = xlsxOf(t, contributionsCSV)
		}
		tab, err := Parse(Contributions, name, data, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(tab.Contributions, want) {
			t.Fatalf("%s: %+v\nwant %+v", name, tab.Contributions, want)
		}
	}
}

// An XLSX file whose cells are numbers and dates, as a person typing into
// Excel makes it, reads the same as text cells.
func TestXLSXNumberAndDateCells(t *testing.T) {
	t.Parallel()
	f := excelize.NewFile()
	defer f.Close()
	rows := [][]any{
		{"uscc", "period", "employer", "employee", "paid_on"},
		{"91440300708461136T", 202101, 1234.56, 0.1 + 0.2, 44237}, // 44237 = 2021-02-10
	}
	for r, row := range rows {
		for c, v := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("Sheet1", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	style, _ := f.NewStyle(&excelize.Style{NumFmt: 14})
	_ = f.SetCellStyle("Sheet1", "E2", "E2", style)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	tab, err := Parse(Contributions, "c.xlsx", buf.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := tab.Contributions[0]
	if got.Period != 202101 || got.EmployerFen != 123456 || got.EmployeeFen != 30 || got.PaidOn != 20210210 {
		t.Fatalf("got %+v", got)
	}
}

func TestEveryBadRowReported(t *testing.T) {
	t.Parallel()
	bad := `uscc,period,employer,employee,late_fee,paid_on
91440300708461136T,202101,12.345,1,,2021-02-10
91440300708461136S,202101,1,1,,2021-02-10
91440300708461136T,202113,-1,1,,2021-02-30
91440300708461136T,202101,1,1,,2021-02-10
91440300708461136T,202101,1,1,abc
91440300708461136T,202101,1,1,,2021-02-10,x
91440300708461136S,202102,1,1,,2021-03-10
91440300708461136S,202103,1,1,,2021-04-10
`
	_, err := Parse(Contributions, "contributions.csv", []byte(bad), Options{})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v, want Errors", err)
	}
	want := []string{
		`contributions.csv:2: employer: invalid amount "12.345": more than two decimals (yuan, at most two decimals)`,
		`contributions.csv:3: uscc: "91440300708461136S": not a unified social credit code: character 18 'S' is not allowed`,
		`contributions.csv:4: period: "202113" is not a period YYYYMM or YYYY-MM`,
		`contributions.csv:4: employer: invalid amount "-1": negative (yuan, at most two decimals)`,
		`contributions.csv:4: paid_on: "2021-02-30" is not a date YYYY-MM-DD`,
		`contributions.csv:6: row has 5 fields, the header has 6`,
		`contributions.csv:7: row has 7 fields, the header has 6`,
		`contributions.csv:8: uscc: "91440300708461136S": not a unified social credit code: character 18 'S' is not allowed`,
		`contributions.csv:9: uscc: "91440300708461136S": not a unified social credit code: character 18 'S' is not allowed`,
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestUnitErrors(t *testing.T) {
	t.Parallel()
	bad := `uscc,name,county,industry,size,status,headcount_start,headcount_end
91440300708461136T,甲,371502,C5211,huge,active,1,1
91440300708461136T,乙,371502,5211,small,closed,-1,1.5
914403001922038216,,北京,9999,small,active,1,1
`
	_, err := Parse(Units, "units.csv", []byte(bad), Options{})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	cols := map[int][]string{}
	for _, e := range es {
		cols[e.Line] = append(cols[e.Line], e.Column)
	}
	want := map[int][]string{
		2: {"industry", "size"},
		3: {"uscc", "status", "headcount_start", "headcount_end"},
		4: {"name", "county", "industry"},
	}
	if !reflect.DeepEqual(cols, want) {
		t.Fatalf("bad columns by line = %v, want %v\n%v", cols, want, es)
	}
	if !strings.Contains(es[2].Reason, "line 2") {
		t.Errorf("duplicate unit error does not name the first line: %v", es[2])
	}
}

func TestHeaderErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"missing column": "uscc,period,employer,late_fee,paid_on\n",
		"named twice":    "uscc,period,employer,employee,paid_on,单位缴费\n",
		"empty file":     "",
		"quote":          "uscc,period\n\"a\"b,1\n",
	}
	for name, text := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(Contributions, "contributions.csv", []byte(text), Options{})
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || !strings.HasPrefix(es[0].Error(), "contributions.csv:") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	if _, err := Parse(Units, "units.txt", []byte(unitsCSV), Options{}); err == nil {
		t.Error("a .txt file was accepted")
	}
	if _, err := Parse(Units, "units.xlsx", []byte(unitsCSV), Options{}); err == nil {
		t.Error("a CSV named .xlsx was accepted")
	}
}

func TestReadDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("units.csv", unitsCSV)
	write("失业保险缴费明细.csv", contributionsCSV+"123502001549897397,202101,1,1,,2021-02-01\n123502001549897397,202102,1,1,,2021-03-01\n")
	r, err := ReadDir(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Dataset.Units) != 2 || len(r.Dataset.Contributions) != 5 || len(r.Files) != 2 {
		t.Fatalf("read %+v", r)
	}
	var warned []string
	for _, w := range r.Warnings {
		warned = append(warned, w.Error())
	}
	joined := strings.Join(warned, "\n")
	if !strings.Contains(joined, "失业保险缴费明细.csv:5: uscc: 123502001549897397 is not a unit of the units file; 2 row(s) ignored (lines 5-6)") ||
		!strings.Contains(joined, "no accounts file") || !strings.Contains(joined, "no exclusions file") {
		t.Fatalf("warnings:\n%s", joined)
	}

	// Bad rows in two files are reported together.
	write("accounts.csv", "uscc,kind,bank,account_no,account_name\n91440300708461136T,savings,b,1,n\n")
	write("exclusions.csv", "uscc,list,source,listed_on\n91440300708461136T,zombie,x,2021/01/01\n")
	_, err = ReadDir(dir, Options{})
	var es Errors
	if !errors.As(err, &es) || len(es) != 2 || es[0].File != "accounts.csv" || es[1].File != "exclusions.csv" {
		t.Fatalf("err = %v", err)
	}
	write("units.xlsx", "")
	if _, err := ReadDir(dir, Options{}); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("two units files: err = %v", err)
	}
}

func FuzzParseContributions(f *testing.F) {
	f.Add([]byte(contributionsCSV))
	f.Add([]byte("uscc,period,employer,employee,paid_on\n\"x"))
	f.Add(gb18030Seed())
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(Contributions, "c.csv", data, Options{})
		if err != nil {
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is not Errors: %v", err)
			}
			return
		}
		for _, c := range tab.Contributions {
			if c.EmployerFen < 0 || c.EmployeeFen < 0 || c.Period.Month() < 1 || c.Period.Month() > 12 {
				t.Fatalf("accepted %+v", c)
			}
			if c.PaidOn != 0 {
				if _, err := civil.ParseDate(c.PaidOn.String()); err != nil {
					t.Fatalf("accepted date %v", c.PaidOn)
				}
			}
		}
	})
}

func FuzzParseUnits(f *testing.F) {
	f.Add([]byte(unitsCSV))
	f.Add([]byte(unitsChinese))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(Units, "u.csv", data, Options{})
		if err != nil {
			return
		}
		for _, u := range tab.Units {
			if len(u.USCC) != 18 || len(u.Industry) != 4 || u.HeadcountStart < 0 || u.Status == 0 {
				t.Fatalf("accepted %+v", u)
			}
		}
	})
}

func gb18030Seed() []byte {
	b, _ := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(unitsChinese))
	return b
}
