// Package results writes screening results in the results.csv format of
// DOMAIN.md (and the same table as XLSX): one row per unit, sorted by
// USCC, with the header exactly
//
//	uscc,name,county,decision,reasons,headcount_start,headcount_end,months_paid,base_fen,refund_fen,payee_kind,payee_account
package results

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/xuri/excelize/v2"

	"wengang/policy/refund"
)

// Header is the header row of results.csv.
var Header = []string{
	"uscc", "name", "county", "decision", "reasons", "headcount_start", "headcount_end",
	"months_paid", "base_fen", "refund_fen", "payee_kind", "payee_account",
}

// Row returns the fields of one result as results.csv writes them.
func Row(r *refund.Result, rec []string) []string {
	rec = rec[:0]
	kind := ""
	if r.Payee.Kind != 0 {
		kind = r.Payee.Kind.String()
	}
	return append(rec,
		r.USCC, r.Name, r.County, r.Decision.String(), r.Reasons.String(),
		strconv.FormatInt(int64(r.HeadcountStart), 10),
		strconv.FormatInt(int64(r.HeadcountEnd), 10),
		strconv.FormatInt(int64(r.MonthsPaid), 10),
		strconv.FormatInt(r.BaseFen, 10),
		strconv.FormatInt(r.RefundFen, 10),
		kind, r.Payee.AccountNo,
	)
}

// WriteCSV writes rs as results.csv (UTF-8, no BOM, LF line ends) in the
// order given; callers pass them sorted by USCC.
func WriteCSV(w io.Writer, rs []refund.Result) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	cw := csv.NewWriter(bw)
	if err := cw.Write(Header); err != nil {
		return err
	}
	rec := make([]string, 0, len(Header))
	for i := range rs {
		rec = Row(&rs[i], rec)
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// WriteXLSX writes rs as a workbook with one sheet, 筛查结果, every cell
// text so that USCCs and account numbers stay exact.
func WriteXLSX(w io.Writer, rs []refund.Result) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "筛查结果"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	row := make([]any, len(Header))
	for i, h := range Header {
		row[i] = h
	}
	if err := sw.SetRow("A1", row); err != nil {
		return err
	}
	rec := make([]string, 0, len(Header))
	for i := range rs {
		rec = Row(&rs[i], rec)
		for j, v := range rec {
			row[j] = v
		}
		cell, err := excelize.CoordinatesToCellName(1, i+2)
		if err != nil {
			return err
		}
		if err := sw.SetRow(cell, row); err != nil {
			return fmt.Errorf("results: row %d: %w", i+2, err)
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	return f.Write(w)
}
