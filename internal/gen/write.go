package gen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"wengang/internal/fault"
	"wengang/policy/civil"
	"wengang/policy/refund"
)

// Encoding is the character encoding of a CSV file.
type Encoding uint8

// Encodings of CSV files. UTF8 files end lines with LF; UTF8BOM and GB18030
// files end them with CRLF, as Excel on Chinese Windows writes them.
const (
	UTF8 Encoding = iota
	UTF8BOM
	GB18030
)

// String returns the encoding's name.
func (e Encoding) String() string {
	switch e {
	case UTF8:
		return "utf-8"
	case UTF8BOM:
		return "utf-8-bom"
	case GB18030:
		return "gb18030"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// Format says how Write writes the files.
type Format struct {
	XLSX     bool     // XLSX (first sheet, every cell a string); else CSV
	Encoding Encoding // of CSV files
	Chinese  bool     // Chinese headers and values (大型, 存续, 对公账户, 环保) instead of English keys
	Shuffle  bool     // columns in a seeded order other than DOMAIN.md's
	Grouping bool     // amounts with thousands separators: 1,234.56
	// Seed picks the column order (with Shuffle), how each file writes
	// periods (YYYYMM or YYYY-MM) and which rows are spelled differently
	// from the canonical form.
	Seed int64
	// Plain writes every value in its canonical form. Otherwise, as real
	// exports do, a few rows spell their values differently in ways
	// DOMAIN.md says readers accept: a USCC in lower case, full-width or
	// with spaces around it (about 2 rows in 1,000), an industry class
	// with its section letter (1 in 10), a 茌平区 unit with the legacy
	// county code 371523 (1 in 5), and periods written YYYY-MM in some
	// files.
	Plain bool
}

// MaxXLSXRows is the number of data rows a sheet holds below its header.
const MaxXLSXRows = excelize.TotalRows - 1

// column is a column of a source file: its English key and Chinese header.
type column struct{ key, zh string }

// table is one of the four files: its columns and how to write row i.
type table struct {
	name    string // file name without extension
	sheet   string // Chinese sheet name
	columns []column
	rows    int
	fill    func(w *rowWriter, i int)
}

// The files' columns, in DOMAIN.md's order.
var (
	unitColumns = []column{
		{"uscc", "统一社会信用代码"}, {"name", "单位名称"}, {"county", "参保地"},
		{"industry", "行业代码"}, {"size", "企业划型"}, {"status", "登记状态"},
		{"headcount_start", "上年初参保人数"}, {"headcount_end", "上年末参保人数"},
		{"mobile", "联系电话"},
	}
	contributionColumns = []column{
		{"uscc", "统一社会信用代码"}, {"period", "费款所属期"}, {"employer", "单位缴费"},
		{"employee", "个人缴费"}, {"late_fee", "滞纳金"}, {"paid_on", "到账日期"},
	}
	accountColumns = []column{
		{"uscc", "统一社会信用代码"}, {"kind", "账户类型"}, {"bank", "开户行"},
		{"bank_code", "联行号"}, {"account_no", "账号"}, {"account_name", "户名"},
	}
	exclusionColumns = []column{
		{"uscc", "统一社会信用代码"}, {"list", "名单"}, {"source", "来源"},
		{"listed_on", "列入日期"}, {"removed_on", "移出日期"},
	}
)

// Chinese values, indexed like the refund enums.
var (
	sizeZh   = [...]string{"", "大型", "中型", "小型", "微型"}
	statusZh = [...]string{"", "存续", "注销", "吊销"}
	kindZh   = [...]string{"", "对公账户", "社保缴费账户"}
	listZh   = [...]string{"", "严重违法失信", "僵尸企业", "产业政策", "环保"}
)

// Write writes ds into dir (made if missing) as units, contributions,
// accounts and exclusions, each .csv or .xlsx. Each file is written to a
// temporary file in dir and renamed into place only when all four are
// complete, so a failure leaves no partial file and no file changed. The
// same dataset and format give byte-identical files. Write fails with
// fault.ErrInvalid when a file would not fit in an XLSX sheet
// (MaxXLSXRows) or the format is unknown.
func Write(dir string, ds *refund.Dataset, f Format) error {
	if ds == nil {
		return fault.New(fault.ErrInvalid, "gen: no dataset")
	}
	if f.Encoding > GB18030 {
		return fault.New(fault.ErrInvalid, "gen: unknown encoding %d", f.Encoding)
	}
	tables := f.tables(ds)
	if f.XLSX {
		for _, t := range tables {
			if t.rows > MaxXLSXRows {
				return fault.New(fault.ErrInvalid, "gen: %s has %d rows; an XLSX sheet holds at most %d: write CSV", t.name, t.rows, MaxXLSXRows)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	ext := ".csv"
	if f.XLSX {
		ext = ".xlsx"
	}
	for _, t := range tables {
		// A directory in the way would make its rename fail after others
		// had replaced their files.
		if fi, err := os.Stat(filepath.Join(dir, t.name+ext)); err == nil && !fi.Mode().IsRegular() {
			return fault.New(fault.ErrInvalid, "gen: %s is not a regular file", filepath.Join(dir, t.name+ext))
		}
	}
	var temps []string
	defer func() {
		for _, t := range temps {
			os.Remove(t) // gone already when renamed
		}
	}()
	for i, t := range tables {
		tmp, err := os.CreateTemp(dir, "."+t.name+ext+".*.tmp")
		if err != nil {
			return fmt.Errorf("gen: %w", err)
		}
		temps = append(temps, tmp.Name())
		err = f.writeTable(tmp, t, uint64(i))
		if err == nil {
			err = tmp.Chmod(0o644)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("gen: writing %s%s: %w", t.name, ext, err)
		}
	}
	for i, t := range tables {
		if err := os.Rename(temps[i], filepath.Join(dir, t.name+ext)); err != nil {
			return fmt.Errorf("gen: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: make the renames durable
		d.Close()
	}
	return nil
}

// tables returns the four files of ds.
func (f Format) tables(ds *refund.Dataset) []table {
	periodCompact := f.Plain || rand.New(rand.NewPCG(uint64(f.Seed), 0x9e3779b97f4a7c15)).IntN(2) == 0
	return []table{
		{name: "units", sheet: "参保单位", columns: unitColumns, rows: len(ds.Units), fill: func(w *rowWriter, i int) {
			u := &ds.Units[i]
			w.uscc(u.USCC)
			w.str(u.Name)
			if u.County == "371503" && w.vary(200) {
				w.str("371523")
			} else {
				w.str(u.County)
			}
			if len(u.Industry) == 4 && w.vary(100) {
				w.buf = append(w.buf, sectionOf(u.Industry))
			}
			w.str(u.Industry)
			w.enum(int(u.Size), sizeZh[:], u.Size.String())
			w.enum(int(u.Status), statusZh[:], u.Status.String())
			w.int(int64(u.HeadcountStart))
			w.int(int64(u.HeadcountEnd))
			w.str(u.Mobile)
		}},
		{name: "contributions", sheet: "失业保险缴费明细", columns: contributionColumns, rows: len(ds.Contributions), fill: func(w *rowWriter, i int) {
			c := &ds.Contributions[i]
			w.uscc(c.USCC)
			w.period(c.Period, periodCompact)
			w.yuan(c.EmployerFen)
			w.yuan(c.EmployeeFen)
			w.yuan(c.LateFeeFen)
			w.date(c.PaidOn)
		}},
		{name: "accounts", sheet: "账户", columns: accountColumns, rows: len(ds.Accounts), fill: func(w *rowWriter, i int) {
			a := &ds.Accounts[i]
			w.uscc(a.USCC)
			w.enum(int(a.Kind), kindZh[:], a.Kind.String())
			w.str(a.Bank)
			w.str(a.BankCode)
			w.str(a.AccountNo)
			w.str(a.AccountName)
		}},
		{name: "exclusions", sheet: "名单", columns: exclusionColumns, rows: len(ds.Exclusions), fill: func(w *rowWriter, i int) {
			e := &ds.Exclusions[i]
			w.uscc(e.USCC)
			w.enum(int(e.List), listZh[:], e.List.String())
			w.str(e.Source)
			w.date(e.ListedOn)
			w.date(e.RemovedOn)
		}},
	}
}

// order returns the output position's column index for each position:
// DOMAIN.md's order, or with Shuffle a seeded permutation other than it.
func (f Format) order(n int, salt uint64) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	if !f.Shuffle || n < 2 {
		return out
	}
	r := rand.New(rand.NewPCG(uint64(f.Seed), 0x51ed270b27a0b3c5+salt))
	r.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
	identity := true
	for i, c := range out {
		identity = identity && i == c
	}
	if identity {
		out = append(out[1:], out[0])
	}
	return out
}

// writeTable writes t to w in f's format; salt tells the files apart in
// the seeded choices.
func (f Format) writeTable(w io.Writer, t table, salt uint64) error {
	rw := &rowWriter{
		chinese: f.Chinese,
		group:   f.Grouping,
		plain:   f.Plain,
		r:       rand.New(rand.NewPCG(uint64(f.Seed), 0xa0761d6478bd642f+salt)),
	}
	order := f.order(len(t.columns), salt)
	header := make([]string, len(t.columns))
	for i, c := range order {
		header[i] = t.columns[c].key
		if f.Chinese {
			header[i] = t.columns[c].zh
		}
	}
	if f.XLSX {
		return writeXLSX(w, t, order, header, rw)
	}
	return f.writeCSV(w, t, order, header, rw)
}

func (f Format) writeCSV(out io.Writer, t table, order []int, header []string, rw *rowWriter) error {
	eol := "\r\n"
	switch f.Encoding {
	case UTF8:
		eol = "\n"
	case UTF8BOM:
		if _, err := io.WriteString(out, "\uFEFF"); err != nil {
			return err
		}
	case GB18030:
		out = transform.NewWriter(out, simplifiedchinese.GB18030.NewEncoder())
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	line := make([]byte, 0, 256)
	for i, h := range header {
		if i > 0 {
			line = append(line, ',')
		}
		line = appendCSVField(line, h)
	}
	line = append(line, eol...)
	if _, err := bw.Write(line); err != nil {
		return err
	}
	for i := 0; i < t.rows; i++ {
		rw.reset()
		t.fill(rw, i)
		line = line[:0]
		for j, c := range order {
			if j > 0 {
				line = append(line, ',')
			}
			line = appendCSVField(line, rw.field(c))
		}
		line = append(line, eol...)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if tw, ok := out.(*transform.Writer); ok {
		return tw.Close()
	}
	return nil
}

// appendCSVField appends s, quoted as RFC 4180 and encoding/csv do when it
// holds a comma, a quote or a line break or starts with a space.
func appendCSVField[S string | []byte](dst []byte, s S) []byte {
	quote := len(s) > 0 && (s[0] == ' ' || s[0] == '\t')
	for i := 0; i < len(s) && !quote; i++ {
		switch s[i] {
		case ',', '"', '\r', '\n':
			quote = true
		}
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

func writeXLSX(out io.Writer, t table, order []int, header []string, rw *rowWriter) error {
	x := excelize.NewFile()
	defer x.Close()
	sheet := t.name
	if rw.chinese {
		sheet = t.sheet
	}
	if err := x.SetSheetName(x.GetSheetName(0), sheet); err != nil {
		return err
	}
	sw, err := x.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	cells := make([]any, len(header))
	for i, h := range header {
		cells[i] = h
	}
	if err := sw.SetRow("A1", cells); err != nil {
		return err
	}
	for i := 0; i < t.rows; i++ {
		rw.reset()
		t.fill(rw, i)
		for j, c := range order {
			cells[j] = string(rw.field(c))
		}
		ref, err := excelize.CoordinatesToCellName(1, i+2)
		if err != nil {
			return err
		}
		if err := sw.SetRow(ref, cells); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	_, err = x.WriteTo(out)
	return err
}

// rowWriter collects the fields of one row, in canonical column order, in
// one buffer.
type rowWriter struct {
	buf     []byte
	ends    []int
	chinese bool
	group   bool
	plain   bool
	r       *rand.Rand // the file's seeded spelling choices
}

func (w *rowWriter) reset() { w.buf, w.ends = w.buf[:0], w.ends[:0] }

func (w *rowWriter) end() { w.ends = append(w.ends, len(w.buf)) }

// field returns field i of the row.
func (w *rowWriter) field(i int) []byte {
	from := 0
	if i > 0 {
		from = w.ends[i-1]
	}
	return w.buf[from:w.ends[i]]
}

// vary reports, with probability per/1000, that a value is spelled in a
// non-canonical form; never when plain.
func (w *rowWriter) vary(per int) bool {
	return !w.plain && w.r.IntN(1000) < per
}

func (w *rowWriter) str(s string) {
	w.buf = append(w.buf, s...)
	w.end()
}

func (w *rowWriter) int(n int64) {
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.end()
}

// uscc writes a code, now and then in a spelling that normalizes to it.
func (w *rowWriter) uscc(code string) {
	if !w.vary(2) {
		w.str(code)
		return
	}
	switch w.r.IntN(3) {
	case 0:
		if strings.IndexFunc(code, func(r rune) bool { return r >= 'A' && r <= 'Z' }) >= 0 {
			w.str(strings.ToLower(code))
		} else {
			w.str(" " + code + " ")
		}
	case 1:
		w.str(code + " ")
	default:
		var b strings.Builder
		for _, c := range []byte(code) {
			b.WriteRune(rune(c) - '!' + '\uFF01')
		}
		w.str(b.String())
	}
}

// enum writes the English key or, in Chinese files, the Chinese value.
func (w *rowWriter) enum(v int, zh []string, en string) {
	if w.chinese && v < len(zh) {
		w.str(zh[v])
		return
	}
	w.str(en)
}

// date writes d as YYYY-MM-DD, or nothing for the zero Date.
func (w *rowWriter) date(d civil.Date) {
	if d != 0 {
		w.buf = appendDigits(w.buf, d.Year(), 4)
		w.buf = append(w.buf, '-')
		w.buf = appendDigits(w.buf, d.Month(), 2)
		w.buf = append(w.buf, '-')
		w.buf = appendDigits(w.buf, d.Day(), 2)
	}
	w.end()
}

// period writes m as YYYYMM when compact, else as YYYY-MM.
func (w *rowWriter) period(m civil.Month, compact bool) {
	w.buf = appendDigits(w.buf, m.Year(), 4)
	if !compact {
		w.buf = append(w.buf, '-')
	}
	w.buf = appendDigits(w.buf, m.Month(), 2)
	w.end()
}

// appendDigits appends the last width decimal digits of n ≥ 0, with
// leading zeros.
func appendDigits(dst []byte, n, width int) []byte {
	for i := width - 1; i >= 0; i-- {
		p := 1
		for j := 0; j < i; j++ {
			p *= 10
		}
		dst = append(dst, byte('0'+n/p%10))
	}
	return dst
}

// yuan writes fen as yuan with exactly two decimals, in integers.
func (w *rowWriter) yuan(fen int64) {
	w.buf = appendYuan(w.buf, fen, w.group)
	w.end()
}

// appendYuan appends fen (≥ 0) as yuan with two decimals, grouping the
// yuan by thousands when group is set.
func appendYuan(dst []byte, fen int64, group bool) []byte {
	if fen < 0 {
		panic(errors.New("gen: negative amount"))
	}
	var tmp [20]byte
	yuan := strconv.AppendInt(tmp[:0], fen/100, 10)
	if !group || len(yuan) <= 3 {
		dst = append(dst, yuan...)
	} else {
		head := len(yuan) % 3
		if head > 0 {
			dst = append(dst, yuan[:head]...)
		}
		for i := head; i < len(yuan); i += 3 {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, yuan[i:i+3]...)
		}
	}
	cents := fen % 100
	return append(dst, '.', byte('0'+cents/10), byte('0'+cents%10))
}
