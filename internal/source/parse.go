package source

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"wengang/policy/civil"
	"wengang/policy/county"
	"wengang/policy/industry"
	"wengang/policy/money"
	"wengang/policy/refund"
	"wengang/policy/uscc"
)

// File describes one file that was read.
type File struct {
	Name     string
	Kind     Kind
	Format   Format
	Encoding Encoding // CSV only
	Rows     int
	SHA256   [32]byte // of the bytes as given
}

// Table is the rows of one file, in file order; only the slice of its kind
// is set. Lines[i] is the line of the i-th row.
type Table struct {
	File          File
	Lines         []int32
	Units         []refund.Unit
	Contributions []refund.Contribution
	Accounts      []refund.Account
	Exclusions    []refund.Exclusion
}

// grow makes room for about n rows of kind, so that appending millions of
// rows does not copy them again and again.
func (t *Table) grow(kind Kind, n int) {
	t.Lines = make([]int32, 0, n)
	switch kind {
	case Units:
		t.Units = make([]refund.Unit, 0, n)
	case Contributions:
		t.Contributions = make([]refund.Contribution, 0, n)
	case Accounts:
		t.Accounts = make([]refund.Account, 0, n)
	case Exclusions:
		t.Exclusions = make([]refund.Exclusion, 0, n)
	}
}

// Options configure reading.
type Options struct {
	// Counties resolves the county column; nil means Liaocheng's.
	Counties *county.Registry
}

var columns = [...][]column{
	Units: {
		{"uscc", "统一社会信用代码", true},
		{"name", "单位名称", true},
		{"county", "参保地", true},
		{"industry", "行业代码", true},
		{"size", "企业划型", true},
		{"status", "登记状态", true},
		{"headcount_start", "上年初参保人数", true},
		{"headcount_end", "上年末参保人数", true},
		{"mobile", "联系电话", false},
	},
	Contributions: {
		{"uscc", "统一社会信用代码", true},
		{"period", "费款所属期", true},
		{"employer", "单位缴费", true},
		{"employee", "个人缴费", true},
		{"late_fee", "滞纳金", false},
		{"paid_on", "到账日期", true},
	},
	Accounts: {
		{"uscc", "统一社会信用代码", true},
		{"kind", "账户类型", true},
		{"bank", "开户行", true},
		{"bank_code", "联行号", false},
		{"account_no", "账号", true},
		{"account_name", "户名", true},
	},
	Exclusions: {
		{"uscc", "统一社会信用代码", true},
		{"list", "名单", true},
		{"source", "来源", true},
		{"listed_on", "列入日期", true},
		{"removed_on", "移出日期", false},
	},
}

// Parse reads one source file of the given kind. name is used in errors
// and to tell CSV from XLSX by its extension. On bad input it returns an
// Errors naming every bad row, and no table.
func Parse(kind Kind, name string, data []byte, opt Options) (*Table, error) {
	format, err := FormatOf(name)
	if err != nil {
		return nil, Errors{{File: name, Reason: "not a .csv or .xlsx file"}}
	}
	if kind < Units || kind > Exclusions {
		return nil, fmt.Errorf("source: unknown kind %d", kind)
	}
	if opt.Counties == nil {
		opt.Counties = county.NewRegistry(county.Liaocheng())
	}
	t := &Table{File: File{Name: name, Kind: kind, Format: format, SHA256: sha256.Sum256(data)}}
	var recs records
	switch format {
	case CSV:
		text, enc, err := decodeCSV(data)
		if err != nil {
			return nil, Errors{{File: name, Reason: err.Error()}}
		}
		t.File.Encoding = enc
		t.grow(kind, bytes.Count(text, []byte{'\n'}))
		recs = newCSVRecords(text)
	case XLSX:
		x, err := newXLSXRecords(data)
		if err != nil {
			return nil, Errors{{File: name, Reason: err.Error()}}
		}
		recs = x
	}
	defer recs.close()

	p := &parser{file: name, format: format, table: t, counties: opt.Counties,
		interned: make(map[string]string), seen: make(map[string]int32)}
	if err := p.run(kind, recs); err != nil {
		return nil, err
	}
	if len(p.errs) > 0 {
		for i := range p.errs {
			p.errs[i].File = name
		}
		p.errs.sort()
		return nil, p.errs
	}
	return t, nil
}

type parser struct {
	file     string
	format   Format
	table    *Table
	counties *county.Registry
	errs     Errors
	interned map[string]string // one string per USCC
	seen     map[string]int32  // units: USCC → line of its row
	lastRaw  string            // the last USCC cell read and its code
	lastCode string

	// the row being parsed
	h      header
	fields []string
	line   int
	bad    bool
}

func (p *parser) run(kind Kind, recs records) error {
	fields, _, err := recs.next()
	for err != nil {
		var re *RowError
		switch {
		case err == io.EOF:
			p.errs = append(p.errs, RowError{Line: 1, Reason: "the file is empty: no header row"})
			return nil
		case errors.As(err, &re):
			p.errs = append(p.errs, *re)
			return nil
		default:
			return err
		}
	}
	var herrs []RowError
	p.h, herrs = readHeader(fields, columns[kind])
	if len(herrs) > 0 {
		p.errs = append(p.errs, herrs...)
		return nil
	}
	width := len(fields)
	for {
		fields, line, err := recs.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var re *RowError
			if errors.As(err, &re) {
				p.errs = append(p.errs, *re)
				continue
			}
			return err
		}
		if blank(fields) {
			continue
		}
		if p.format == CSV && len(fields) != width && !extraBlank(fields, width) {
			p.errs = append(p.errs, RowError{Line: line, Reason: fmt.Sprintf("row has %d fields, the header has %d", len(fields), width)})
			continue
		}
		p.fields, p.line, p.bad = fields, line, false
		switch kind {
		case Units:
			p.table.Units = append(p.table.Units, p.unit())
		case Contributions:
			p.table.Contributions = append(p.table.Contributions, p.contribution())
		case Accounts:
			p.table.Accounts = append(p.table.Accounts, p.account())
		case Exclusions:
			p.table.Exclusions = append(p.table.Exclusions, p.exclusion())
		}
		p.table.Lines = append(p.table.Lines, int32(line))
		p.table.File.Rows++
	}
	return nil
}

func blank(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// extraBlank reports whether a CSV row is wider than the header only by
// empty trailing fields, as some exports pad rows.
func extraBlank(fields []string, width int) bool {
	return len(fields) > width && blank(fields[width:])
}

// get returns column i's trimmed value, "" when the column is absent.
func (p *parser) get(i int) string {
	f := p.h.index[i]
	if f < 0 || f >= len(p.fields) {
		return ""
	}
	return strings.TrimSpace(p.fields[f])
}

// fail records a problem with column i of the current row.
func (p *parser) fail(i int, format string, args ...any) {
	p.bad = true
	p.errs = append(p.errs, RowError{Line: p.line, Column: p.h.names[i], Reason: fmt.Sprintf(format, args...)})
}

func (p *parser) required(i int) (string, bool) {
	v := p.get(i)
	if v == "" {
		p.fail(i, "empty")
		return "", false
	}
	return v, true
}

func (p *parser) uscc(i int) string {
	v, ok := p.required(i)
	if !ok {
		return ""
	}
	if v == p.lastRaw && v != "" {
		// The rows of one unit usually come together.
		return p.lastCode
	}
	code := p.usccOf(i, v)
	if code != "" {
		p.lastRaw, p.lastCode = strings.Clone(v), code
	}
	return code
}

func (p *parser) usccOf(i int, v string) string {
	code := uscc.Normalize(v)
	if _, err := uscc.Check(code); err != nil {
		p.fail(i, "%q: %v", v, err)
		return ""
	}
	if s, ok := p.interned[code]; ok {
		return s
	}
	code = strings.Clone(code)
	p.interned[code] = code
	return code
}

func (p *parser) count(i int) int32 {
	v, ok := p.required(i)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 || v[0] == '+' {
		p.fail(i, "%q is not a whole number of people", v)
		return 0
	}
	return int32(n)
}

func (p *parser) amount(i int, optional bool) int64 {
	v := p.get(i)
	if v == "" {
		if optional {
			return 0
		}
		p.fail(i, "empty")
		return 0
	}
	fen, err := money.ParseYuan(v)
	if err != nil && p.format == XLSX {
		if f, xerr := xlsxAmount(v); xerr == nil {
			fen, err = f, nil
		}
	}
	if err != nil {
		p.fail(i, "%v (yuan, at most two decimals)", err)
		return 0
	}
	return fen
}

func (p *parser) date(i int, optional bool) civil.Date {
	v := p.get(i)
	if v == "" {
		if !optional {
			p.fail(i, "empty")
		}
		return 0
	}
	d, err := civil.ParseDate(v)
	if err != nil && p.format == XLSX {
		d, err = xlsxDate(v)
	}
	if err != nil {
		p.fail(i, "%q is not a date YYYY-MM-DD", v)
		return 0
	}
	return d
}

func (p *parser) unit() refund.Unit {
	const (
		cUSCC = iota
		cName
		cCounty
		cIndustry
		cSize
		cStatus
		cStart
		cEnd
		cMobile
	)
	var u refund.Unit
	u.USCC = p.uscc(cUSCC)
	if u.USCC != "" {
		if first, dup := p.seen[u.USCC]; dup {
			p.fail(cUSCC, "unit %s already appears on line %d; a USCC may appear once", u.USCC, first)
		} else {
			p.seen[u.USCC] = int32(p.line)
		}
	}
	u.Name, _ = p.required(cName)
	if v, ok := p.required(cCounty); ok {
		c, err := p.counties.Normalize(v)
		if err != nil {
			p.fail(cCounty, "%v", err)
		}
		u.County = c
	}
	if v, ok := p.required(cIndustry); ok {
		c, err := industry.Parse(v)
		if err != nil {
			p.fail(cIndustry, "%v (GB/T 4754-2017)", err)
		}
		u.Industry = string(c)
	}
	size, ok := sizes[strings.ToLower(p.get(cSize))]
	if !ok {
		p.fail(cSize, "%q is not a size class (large/medium/small/micro, 大型/中型/小型/微型, or empty)", p.get(cSize))
	}
	u.Size = size
	if v, ok := p.required(cStatus); ok {
		st, known := statuses[strings.ToLower(v)]
		if !known {
			p.fail(cStatus, "%q is not a registration status (active/deregistered/revoked, 存续/注销/吊销)", v)
		}
		u.Status = st
	}
	u.HeadcountStart = p.count(cStart)
	u.HeadcountEnd = p.count(cEnd)
	u.Mobile = p.get(cMobile)
	return u
}

func (p *parser) contribution() refund.Contribution {
	const (
		cUSCC = iota
		cPeriod
		cEmployer
		cEmployee
		cLateFee
		cPaidOn
	)
	var c refund.Contribution
	c.USCC = p.uscc(cUSCC)
	if v, ok := p.required(cPeriod); ok {
		m, err := civil.ParseMonth(v)
		if err != nil {
			p.fail(cPeriod, "%q is not a period YYYYMM or YYYY-MM", v)
		}
		c.Period = m
	}
	c.EmployerFen = p.amount(cEmployer, false)
	c.EmployeeFen = p.amount(cEmployee, false)
	c.LateFeeFen = p.amount(cLateFee, true)
	c.PaidOn = p.date(cPaidOn, true)
	return c
}

func (p *parser) account() refund.Account {
	const (
		cUSCC = iota
		cKind
		cBank
		cBankCode
		cAccountNo
		cAccountName
	)
	var a refund.Account
	a.USCC = p.uscc(cUSCC)
	if v, ok := p.required(cKind); ok {
		k, known := accountKinds[strings.ToLower(v)]
		if !known {
			p.fail(cKind, "%q is not an account kind (corporate 对公账户 / social_insurance 社保缴费账户)", v)
		}
		a.Kind = k
	}
	a.Bank = p.get(cBank)
	a.BankCode = p.get(cBankCode)
	if v, ok := p.required(cAccountNo); ok {
		if !accountNumber(v) {
			p.fail(cAccountNo, "%q is not an account number (digits; an XLSX column must be text, not a number)", v)
		}
		a.AccountNo = v
	}
	a.AccountName = p.get(cAccountName)
	return a
}

func (p *parser) exclusion() refund.Exclusion {
	const (
		cUSCC = iota
		cList
		cSource
		cListedOn
		cRemovedOn
	)
	var e refund.Exclusion
	e.USCC = p.uscc(cUSCC)
	if v, ok := p.required(cList); ok {
		l, known := lists[strings.ToLower(v)]
		if !known {
			p.fail(cList, "%q is not a list (credit 严重违法失信 / zombie 僵尸企业 / industry_policy 产业政策 / environment 环保)", v)
		}
		e.List = l
	}
	e.Source = p.get(cSource)
	e.ListedOn = p.date(cListedOn, false)
	e.RemovedOn = p.date(cRemovedOn, true)
	if e.ListedOn != 0 && e.RemovedOn != 0 && e.RemovedOn < e.ListedOn {
		p.fail(cRemovedOn, "removed on %s, before it was listed on %s", e.RemovedOn, e.ListedOn)
	}
	return e
}

func accountNumber(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

var sizes = map[string]refund.Size{
	"":       refund.SizeUnknown,
	"large":  refund.SizeLarge,
	"medium": refund.SizeMedium,
	"small":  refund.SizeSmall,
	"micro":  refund.SizeMicro,
	"大型":     refund.SizeLarge,
	"中型":     refund.SizeMedium,
	"小型":     refund.SizeSmall,
	"微型":     refund.SizeMicro,
	"大型企业":   refund.SizeLarge,
	"中型企业":   refund.SizeMedium,
	"小型企业":   refund.SizeSmall,
	"微型企业":   refund.SizeMicro,
}

var statuses = map[string]refund.Status{
	"active":       refund.StatusActive,
	"deregistered": refund.StatusDeregistered,
	"revoked":      refund.StatusRevoked,
	"存续":           refund.StatusActive,
	"在业":           refund.StatusActive,
	"在营":           refund.StatusActive,
	"开业":           refund.StatusActive,
	"注销":           refund.StatusDeregistered,
	"吊销":           refund.StatusRevoked,
}

var accountKinds = map[string]refund.AccountKind{
	"corporate":        refund.AccountCorporate,
	"social_insurance": refund.AccountSocialInsurance,
	"对公账户":             refund.AccountCorporate,
	"对公":               refund.AccountCorporate,
	"社保缴费账户":           refund.AccountSocialInsurance,
	"社保账户":             refund.AccountSocialInsurance,
}

var lists = map[string]refund.List{
	"credit":          refund.ListCredit,
	"zombie":          refund.ListZombie,
	"industry_policy": refund.ListIndustryPolicy,
	"environment":     refund.ListEnvironment,
	"严重违法失信":          refund.ListCredit,
	"僵尸企业":            refund.ListZombie,
	"产业政策":            refund.ListIndustryPolicy,
	"产业结构调整":          refund.ListIndustryPolicy,
	"环保":              refund.ListEnvironment,
}

// xlsxDate reads a date cell stored as an Excel serial day number (the
// 1900 date system: serial 1 is 1900-01-01; serials from 61 on are exact).
func xlsxDate(v string) (civil.Date, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 61 || n > 401768 { // 1900-03-01 .. 2999-12-31
		return 0, fmt.Errorf("not a date serial")
	}
	return civil.Date(18991230).AddDays(n), nil
}

// xlsxAmount reads a number cell whose stored digits are a binary float's
// shortest form, such as 1234.5599999999999 for 1234.56: the value is
// accepted when it is within 1e-9 yuan of a two-decimal amount. Anything
// further from one is refused, never rounded.
func xlsxAmount(v string) (int64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e13 || strings.ContainsAny(v, "eE") {
		return 0, fmt.Errorf("not an amount")
	}
	twoDec := strconv.FormatFloat(f, 'f', 2, 64)
	back, _ := strconv.ParseFloat(twoDec, 64)
	if d := back - f; d > 1e-9 || d < -1e-9 {
		return 0, fmt.Errorf("more than two decimals")
	}
	return money.ParseYuan(twoDec)
}
