package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"wengang/internal/results"
	"wengang/internal/source"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/money"
	"wengang/policy/refund"
	"wengang/policy/uscc"
)

// Offline returns the commands that need no server: screen --dir,
// workdays, uscc and gen.
func Offline() []Command {
	return []Command{
		{Name: "screen", Summary: "筛查: screen source files (--dir), or a dataset on a node (--node), and write results.csv", Run: screenCmd},
		{Name: "workdays", Summary: "工作日: the N-th working day from a date (publicity end)", Run: workdays},
		{Name: "uscc", Summary: "统一社会信用代码: check codes (valid / hold / bad)", Run: usccCmd},
		{Name: "gen", Summary: "生成: write realistic generated source files for demos and tests", Run: genCmd},
	}
}

func loadParams(path string) (refund.Params, error) {
	if path == "" {
		return refund.DefaultParams(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return refund.Params{}, err
	}
	defer f.Close()
	return refund.ParseParams(f)
}

// screenCmd screens offline (--dir) or on a node (--node); both write the
// same results.csv.
func screenCmd(env Env, args []string) error {
	fs := newFlags(env, "screen")
	dir := fs.String("dir", "", "offline: directory with units, contributions, accounts and exclusions (.csv or .xlsx)")
	asOf := fs.String("as-of", "", "data date D, YYYY-MM-DD")
	out := fs.String("out", "", "results file to write (.csv, or .xlsx)")
	paramsPath := fs.String("params", "", "offline: policy parameters JSON (default: the embedded Liaocheng 2022 plan)")
	nf := addNodeFlags(fs)
	dataset := fs.String("dataset", "", "on a node: the dataset to screen")
	policy := fs.String("policy", "", "on a node: policy parameters id (default: the node's)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *asOf == "" || *out == "":
		return fmt.Errorf("%w: --as-of and --out are required, with --dir or with --node", ErrUsage)
	case *dir != "" && *nf.node != "":
		return fmt.Errorf("%w: give --dir (offline) or --node, not both", ErrUsage)
	case *nf.node != "":
		return screenNode(env, nf, *dataset, *asOf, *out, *policy)
	case *dir == "":
		return fmt.Errorf("%w: --dir or --node is required", ErrUsage)
	}
	return screenDir(env, *dir, *asOf, *out, *paramsPath)
}

func screenDir(env Env, dir, asOf, out, paramsPath string) error {
	d, err := civil.ParseDate(asOf)
	if err != nil {
		return fmt.Errorf("%w: --as-of: %v", ErrUsage, err)
	}
	params, err := loadParams(paramsPath)
	if err != nil {
		return err
	}
	read, err := source.ReadDir(dir, source.Options{})
	if err != nil {
		var es source.Errors
		if errors.As(err, &es) {
			for _, e := range es {
				fmt.Fprintln(env.Stderr, e.Error())
			}
			fmt.Fprintf(env.Stderr, "wengang screen: %d bad row(s); nothing written (输入有误，未生成结果文件)\n", len(es))
			return ErrReported
		}
		return err
	}
	for _, w := range read.Warnings {
		fmt.Fprintf(env.Stderr, "warning: %s\n", w.Error())
	}
	rs, err := refund.Screen(&read.Dataset, params, d)
	if err != nil {
		return err
	}
	write := results.WriteCSV
	if strings.HasSuffix(strings.ToLower(out), ".xlsx") {
		write = results.WriteXLSX
	}
	if err := writeAtomic(out, func(w io.Writer) error { return write(w, rs) }); err != nil {
		return err
	}
	printTotals(env.Stdout, rs)
	return nil
}

// printTotals prints, per county, the count of each decision and the
// refunds of eligible and held units.
func printTotals(w io.Writer, rs []refund.Result) {
	type totals struct {
		units, eligible, hold, ineligible int
		eligibleFen, holdFen              int64
	}
	by := map[string]*totals{}
	var all totals
	for i := range rs {
		r := &rs[i]
		t := by[r.County]
		if t == nil {
			t = &totals{}
			by[r.County] = t
		}
		for _, t := range []*totals{t, &all} {
			t.units++
			switch r.Decision {
			case refund.Eligible:
				t.eligible++
				t.eligibleFen += r.RefundFen
			case refund.Hold:
				t.hold++
				t.holdFen += r.RefundFen
			case refund.Ineligible:
				t.ineligible++
			}
		}
	}
	codes := make([]string, 0, len(by))
	for c := range by {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "county 参保地\tunits 单位\teligible 符合\thold 待核\tineligible 不符合\trefund 返还(元)\theld 待核金额(元)\t")
	row := func(name string, t *totals) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", name, t.units, t.eligible, t.hold, t.ineligible,
			money.FormatYuan(t.eligibleFen), money.FormatYuan(t.holdFen))
	}
	for _, c := range codes {
		row(c, by[c])
	}
	row("total 合计", &all)
	tw.Flush()
}

func workdays(env Env, args []string) error {
	fs := newFlags(env, "workdays")
	from := fs.String("from", "", "start date, YYYY-MM-DD")
	count := fs.Int("count", 0, "which working day to print (5 for a publicity of 5 working days)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *from == "" || *count < 1 {
		return fmt.Errorf("%w: --from and a --count of at least 1 are required", ErrUsage)
	}
	start, err := civil.ParseDate(*from)
	if err != nil {
		return fmt.Errorf("%w: --from: %v", ErrUsage, err)
	}
	cal, err := calendar.Embedded()
	if err != nil {
		return err
	}
	end, err := cal.NthWorkday(start, *count)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, end)
	return nil
}

func usccCmd(env Env, args []string) error {
	fs := newFlags(env, "uscc")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: give one or more codes", ErrUsage)
	}
	for _, arg := range fs.Args() {
		_, st, err := uscc.Parse(arg)
		if err != nil {
			fmt.Fprintf(env.Stdout, "%s bad: %s\n", arg, strings.TrimPrefix(err.Error(), uscc.ErrBad.Error()+": "))
			continue
		}
		fmt.Fprintf(env.Stdout, "%s %s\n", arg, st)
	}
	return nil
}
