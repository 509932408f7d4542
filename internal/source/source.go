// Package source reads the four source files a county exports (units,
// contributions, accounts, exclusion lists) as DOMAIN.md defines them: CSV
// in UTF-8, UTF-8 with a BOM or GB18030, or XLSX (first sheet); a header
// row naming the columns in English or Chinese, in any order; amounts in
// yuan parsed exactly to fen.
//
// Reading is all or nothing: every bad row is reported with its file, line,
// column and reason, and when there is any, no rows are returned.
package source

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

// Kind is one of the four source files.
type Kind uint8

// The source file kinds.
const (
	Units Kind = iota + 1
	Contributions
	Accounts
	Exclusions
)

// Kinds lists every kind in reading order.
var Kinds = []Kind{Units, Contributions, Accounts, Exclusions}

var kindInfo = [...]struct{ key, chinese string }{
	{},
	{"units", "参保单位"},
	{"contributions", "失业保险缴费明细"},
	{"accounts", "账户"},
	{"exclusions", "名单"},
}

// String returns the English base name of the kind's file ("units").
func (k Kind) String() string {
	if k >= Units && k <= Exclusions {
		return kindInfo[k].key
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Chinese returns the Chinese name of the kind's file ("参保单位").
func (k Kind) Chinese() string {
	if k >= Units && k <= Exclusions {
		return kindInfo[k].chinese
	}
	return ""
}

// ParseKind accepts a kind's English or Chinese name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if s == kindInfo[k].key || s == kindInfo[k].chinese {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown source file kind %q (want units, contributions, accounts or exclusions)", s)
}

// Format is a file's container.
type Format uint8

// Formats.
const (
	CSV Format = iota + 1
	XLSX
)

// String returns "csv" or "xlsx".
func (f Format) String() string {
	switch f {
	case CSV:
		return "csv"
	case XLSX:
		return "xlsx"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// FormatOf returns the format a file name's extension says.
func FormatOf(name string) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return CSV, nil
	case ".xlsx":
		return XLSX, nil
	}
	return 0, fmt.Errorf("%s: not a .csv or .xlsx file", name)
}

// Encoding is the character encoding a CSV file was found in.
type Encoding uint8

// Encodings.
const (
	UTF8 Encoding = iota + 1
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
	return ""
}

// RowError is one bad row or field: FILE:LINE: COLUMN: reason. Line is the
// 1-based line of a CSV file or row of a sheet; Column is the column's
// header as the file writes it (empty for a whole row or file).
type RowError struct {
	File   string
	Line   int
	Column string
	Reason string
}

func (e RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Column != "" {
		b.WriteString(e.Column)
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

// Errors is every problem found in one or more files; it is returned
// instead of any rows. Its message has one problem per line.
type Errors []RowError

func (es Errors) Error() string {
	var b bytes.Buffer
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].File != es[j].File {
			return es[i].File < es[j].File
		}
		return es[i].Line < es[j].Line
	})
}

// Warning is a row that is reported but not fatal, such as a contribution
// whose USCC is not a known unit.
type Warning = RowError
