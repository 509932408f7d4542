package source

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// records yields the rows of a file after its header, with line numbers.
type records interface {
	// next returns the next row's fields and its 1-based line, io.EOF at
	// the end, or a *RowError for a row that cannot be read at all.
	next() (fields []string, line int, err error)
	close()
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// decodeCSV returns data as UTF-8 and the encoding it was found in: a BOM
// says UTF-8; valid UTF-8 is UTF-8; anything else is read as GB18030, as
// Excel on Chinese Windows writes it.
func decodeCSV(data []byte) ([]byte, Encoding, error) {
	if bytes.HasPrefix(data, utf8BOM) {
		return data[len(utf8BOM):], UTF8BOM, nil
	}
	if utf8.Valid(data) {
		return data, UTF8, nil
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
	if err != nil {
		return nil, 0, fmt.Errorf("neither UTF-8 nor GB18030: %v", err)
	}
	return out, GB18030, nil
}

type csvRecords struct {
	r *csv.Reader
}

func newCSVRecords(data []byte) *csvRecords {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	return &csvRecords{r: r}
}

func (c *csvRecords) next() ([]string, int, error) {
	rec, err := c.r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, pe.StartLine, &RowError{Line: pe.StartLine, Reason: fmt.Sprintf("column %d: %v", pe.Column, pe.Err)}
		}
		return nil, 0, err
	}
	line, _ := c.r.FieldPos(0)
	return rec, line, nil
}

func (c *csvRecords) close() {}

type xlsxRecords struct {
	f    *excelize.File
	rows *excelize.Rows
	line int
}

func newXLSXRecords(data []byte) (*xlsxRecords, error) {
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a readable XLSX workbook: %v", err)
	}
	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		f.Close()
		return nil, fmt.Errorf("the workbook has no sheet")
	}
	rows, err := f.Rows(sheets[0])
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sheet %q: %v", sheets[0], err)
	}
	return &xlsxRecords{f: f, rows: rows}, nil
}

func (x *xlsxRecords) next() ([]string, int, error) {
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			return nil, 0, err
		}
		return nil, 0, io.EOF
	}
	x.line++
	// Raw values: a number keeps its stored digits (no display format
	// such as "#,##0.00" or "mm-dd-yy" in between); text stays text.
	cols, err := x.rows.Columns(excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, x.line, &RowError{Line: x.line, Reason: err.Error()}
	}
	return cols, x.line, nil
}

func (x *xlsxRecords) close() {
	x.rows.Close()
	x.f.Close()
}

// column is one column of a kind of file.
type column struct {
	key      string // English key
	chinese  string // Chinese header
	required bool   // the header must name it
}

// header maps a file's header row to its columns.
type header struct {
	index []int    // index[i] is the field of column i, or -1
	names []string // names[i] is column i's header as the file writes it
}

func normHeader(s string) string {
	s = strings.TrimPrefix(s, "\uFEFF")
	s = strings.TrimSpace(s)
	return strings.ToLower(s)
}

// readHeader matches a header row against cols. It reports a missing
// required column or a column named twice.
func readHeader(fields []string, cols []column) (header, []RowError) {
	h := header{index: make([]int, len(cols)), names: make([]string, len(cols))}
	for i := range h.index {
		h.index[i] = -1
	}
	var errs []RowError
	for f, raw := range fields {
		name := normHeader(raw)
		for i, c := range cols {
			if name != c.key && name != c.chinese {
				continue
			}
			if h.index[i] >= 0 {
				errs = append(errs, RowError{Line: 1, Column: strings.TrimSpace(raw), Reason: fmt.Sprintf("column %s is named twice (fields %d and %d)", c.key, h.index[i]+1, f+1)})
				continue
			}
			h.index[i] = f
			h.names[i] = strings.TrimSpace(raw)
		}
	}
	for i, c := range cols {
		if h.index[i] < 0 {
			h.names[i] = c.key
			if c.required {
				errs = append(errs, RowError{Line: 1, Column: c.key, Reason: fmt.Sprintf("required column is missing (header %s or %s)", c.key, c.chinese)})
			}
		}
	}
	return h, errs
}
