package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"wengang/policy/refund"
)

// Read is the result of reading a set of source files.
type Read struct {
	Dataset  refund.Dataset
	Files    []File
	Warnings []Warning
}

// ReadDir reads DIR/units, contributions, accounts and exclusions, each as
// .csv or .xlsx, under their English or Chinese names. units and
// contributions are required; a missing accounts or exclusions file is
// read as empty, with a warning. Every bad row of every file is reported
// together, and nothing is returned when there is any.
func ReadDir(dir string, opt Options) (*Read, error) {
	var (
		tables []*Table
		errs   Errors
		warns  []Warning
	)
	for _, kind := range Kinds {
		path, err := findFile(dir, kind)
		var re *RowError
		switch {
		case errors.As(err, &re):
			errs = append(errs, *re)
			continue
		case err != nil:
			return nil, err
		case path == "" && (kind == Accounts || kind == Exclusions):
			warns = append(warns, Warning{File: kind.String() + ".csv", Reason: fmt.Sprintf("no %s file in %s: read as empty", kind, dir)})
			continue
		case path == "":
			errs = append(errs, RowError{File: kind.String() + ".csv", Reason: fmt.Sprintf("missing: no %s.csv, %s.xlsx, %s.csv or %s.xlsx in %s", kind, kind, kind.Chinese(), kind.Chinese(), dir)})
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		t, err := Parse(kind, filepath.Base(path), data, opt)
		if err != nil {
			var es Errors
			if errors.As(err, &es) {
				errs = append(errs, es...)
				continue
			}
			return nil, err
		}
		tables = append(tables, t)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	// One table per kind: its rows become the dataset's without a copy.
	r := &Read{Warnings: warns}
	for _, t := range tables {
		r.Files = append(r.Files, t.File)
		switch t.File.Kind {
		case Units:
			r.Dataset.Units = t.Units
		case Contributions:
			r.Dataset.Contributions = t.Contributions
		case Accounts:
			r.Dataset.Accounts = t.Accounts
		case Exclusions:
			r.Dataset.Exclusions = t.Exclusions
		}
	}
	r.Warnings = append(r.Warnings, UnknownUnits(tables)...)
	return r, nil
}

// UnknownUnits warns of the rows of the contributions, accounts and
// exclusions tables whose USCC is not a unit of the units table (DOMAIN.md:
// reported, not fatal): one warning per file and USCC, at its first line,
// naming how many rows were ignored and where.
func UnknownUnits(tables []*Table) []Warning {
	known := make(map[string]bool)
	for _, t := range tables {
		for i := range t.Units {
			known[t.Units[i].USCC] = true
		}
	}
	var warns []Warning
	for _, t := range tables {
		var order []string
		lines := map[string][]int32{}
		note := func(i int, code string) {
			if known[code] {
				return
			}
			if _, ok := lines[code]; !ok {
				order = append(order, code)
			}
			lines[code] = append(lines[code], t.Lines[i])
		}
		for i := range t.Contributions {
			note(i, t.Contributions[i].USCC)
		}
		for i := range t.Accounts {
			note(i, t.Accounts[i].USCC)
		}
		for i := range t.Exclusions {
			note(i, t.Exclusions[i].USCC)
		}
		for _, code := range order {
			ls := lines[code]
			warns = append(warns, Warning{File: t.File.Name, Line: int(ls[0]), Column: "uscc",
				Reason: fmt.Sprintf("%s is not a unit of the units file; %d row(s) ignored (lines %s)", code, len(ls), lineList(ls))})
		}
	}
	return warns
}

// lineList writes line numbers compactly: "3, 7-9, 12".
func lineList(ls []int32) string {
	var b strings.Builder
	for i := 0; i < len(ls); {
		j := i
		for j+1 < len(ls) && ls[j+1] == ls[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ls[i], ls[j])
		} else {
			fmt.Fprintf(&b, "%d", ls[i])
		}
		i = j + 1
	}
	return b.String()
}

// findFile returns the one file of kind in dir, or "" when there is none.
// Two candidates (units.csv and units.xlsx) are a *RowError.
func findFile(dir string, kind Kind) (string, error) {
	var found []string
	for _, base := range []string{kind.String(), kind.Chinese()} {
		for _, ext := range []string{".csv", ".xlsx", ".CSV", ".XLSX"} {
			p := filepath.Join(dir, base+ext)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				found = append(found, p)
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", &RowError{File: filepath.Base(found[0]), Reason: fmt.Sprintf("ambiguous: %d files for %s in %s (%v); keep one", len(found), kind, dir, found)}
}
