package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"

	"wengang/client"
	"wengang/internal/protoconv"
	"wengang/internal/rpc"
	"wengang/policy/civil"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
)

// NodeCommands returns the commands a county clerk or reviewer runs
// against a node: import, screen (--node), results, review, notify,
// respond, objection, batch, status, datasets.
func NodeCommands() []Command {
	return []Command{
		{Name: "import", Summary: "导入: upload source files into a dataset on a node", Run: importCmd},
		{Name: "datasets", Summary: "数据集: list a county's datasets on a node", Run: datasetsCmd},
		{Name: "results", Summary: "筛查结果: list a screening's results on a node (filter by decision, reason)", Run: resultsCmd},
		{Name: "review", Summary: "复核: exclude | reinstate | resolve-hold a unit, with a reason", Run: reviewCmd},
		{Name: "notify", Summary: "推送: queue the SMS to every unit to be paid of a screening", Run: notifyCmd},
		{Name: "respond", Summary: "反馈: record an enterprise's confirmation or objection", Run: respondCmd},
		{Name: "objection", Summary: "异议: resolve an enterprise's objection (upheld | dismissed)", Run: objectionCmd},
		{Name: "batch", Summary: "批次: seal | list a county's batches", Run: batchCmd},
		{Name: "status", Summary: "状态: the city's decisions per unit, as the node last pulled them", Run: statusCmd},
	}
}

// nodeFlags are the flags every node command takes.
type nodeFlags struct {
	node, token, ca, county *string
}

func addNodeFlags(fs *flag.FlagSet) nodeFlags {
	return nodeFlags{
		node:   fs.String("node", "", "node URL, such as http://127.0.0.1:8443"),
		token:  fs.String("token", os.Getenv("WENGANG_TOKEN"), "bearer token (default $WENGANG_TOKEN)"),
		ca:     fs.String("ca", "", "CA certificate to trust for an https:// node"),
		county: fs.String("county", "", "county code, such as 371502"),
	}
}

func (f nodeFlags) client() (*client.Node, error) {
	if *f.node == "" || *f.county == "" {
		return nil, fmt.Errorf("%w: --node and --county are required", ErrUsage)
	}
	if *f.token == "" {
		return nil, fmt.Errorf("%w: --token (or $WENGANG_TOKEN) is required", ErrUsage)
	}
	return client.NewNode(*f.node, client.Options{Token: *f.token, CAFile: *f.ca})
}

// reportRPC prints an RPC error for a clerk: every bad row of a file on its
// own line, then the code and message.
func reportRPC(env Env, err error) error {
	rows := rpc.RowViolations(err)
	for _, v := range rows {
		line := v.GetFile()
		if v.GetLine() > 0 {
			line += fmt.Sprintf(":%d", v.GetLine())
		}
		line += ": "
		if v.GetColumn() != "" {
			line += v.GetColumn() + ": "
		}
		fmt.Fprintln(env.Stderr, line+v.GetReason())
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		fmt.Fprintf(env.Stderr, "wengang: %s: %s\n", ce.Code(), ce.Message())
		return ErrReported
	}
	return err
}

func importCmd(env Env, args []string) error {
	fs := newFlags(env, "import")
	nf := addNodeFlags(fs)
	dataset := fs.String("dataset", "", "dataset name (a new name creates the dataset)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dataset == "" || fs.NArg() == 0 {
		return fmt.Errorf("%w: --dataset and one or more FILEs are required", ErrUsage)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	for _, path := range fs.Args() {
		res, err := n.Upload(env.Ctx, *nf.county, *dataset, path, client.NewKey())
		if err != nil {
			fmt.Fprintf(env.Stderr, "%s: not imported (未导入)\n", path)
			return reportRPC(env, err)
		}
		for _, w := range res.GetWarnings() {
			fmt.Fprintf(env.Stderr, "warning: %s:%d: %s: %s\n", w.GetFile(), w.GetLine(), w.GetColumn(), w.GetReason())
		}
		f := res.GetFile()
		fmt.Fprintf(env.Stdout, "%s: %d rows imported into %s/%s (已导入)\n", path, f.GetRowCount(), *nf.county, res.GetDataset().GetName())
	}
	return nil
}

func datasetsCmd(env Env, args []string) error {
	fs := newFlags(env, "datasets")
	nf := addNodeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tname\tstate\tunits\tcontent hash")
	token := ""
	for {
		res, err := n.Import.ListDatasets(env.Ctx, connect.NewRequest(&wengangv1.ListDatasetsRequest{County: *nf.county, PageToken: token}))
		if err != nil {
			return reportRPC(env, err)
		}
		for _, d := range res.Msg.GetDatasets() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", d.GetDatasetId(), d.GetName(), strings.TrimPrefix(d.GetState().String(), "DATASET_STATE_"), d.GetUnitCount(), d.GetContentHash())
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	return tw.Flush()
}

// screenNode runs a screening on a node and writes its results.csv.
func screenNode(env Env, nf nodeFlags, dataset, asOf, out, policy string) error {
	if dataset == "" {
		return fmt.Errorf("%w: --dataset is required with --node", ErrUsage)
	}
	d, err := civil.ParseDate(asOf)
	if err != nil {
		return fmt.Errorf("%w: --as-of: %v", ErrUsage, err)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	res, err := n.Screening.RunScreening(env.Ctx, connect.NewRequest(&wengangv1.RunScreeningRequest{
		County: *nf.county, Dataset: &wengangv1.RunScreeningRequest_DatasetName{DatasetName: dataset},
		AsOf: protoconv.Date(d), PolicyId: policy, IdempotencyKey: client.NewKey(),
	}))
	if err != nil {
		return reportRPC(env, err)
	}
	s := res.Msg.GetScreening()
	format := wengangv1.FileFormat_FILE_FORMAT_CSV
	if strings.HasSuffix(strings.ToLower(out), ".xlsx") {
		format = wengangv1.FileFormat_FILE_FORMAT_XLSX
	}
	err = writeAtomic(out, func(w io.Writer) error {
		return n.Export(env.Ctx, &wengangv1.ExportResultsRequest{County: *nf.county, ScreeningId: s.GetScreeningId(), Format: format,
			View: wengangv1.ResultView_RESULT_VIEW_SCREENED}, w)
	})
	if err != nil {
		return reportRPC(env, err)
	}
	t := s.GetScreened()
	fmt.Fprintf(env.Stdout, "screening %s of %s/%s as of %s: %d units; eligible %d (%s yuan), hold %d (%s yuan), ineligible %d; results in %s\n",
		s.GetScreeningId(), *nf.county, dataset, d, t.GetUnitCount(),
		t.GetEligible().GetCount(), money.FormatYuan(t.GetEligible().GetAmountFen()),
		t.GetHold().GetCount(), money.FormatYuan(t.GetHold().GetAmountFen()), t.GetIneligible().GetCount(), out)
	return nil
}

func resultsCmd(env Env, args []string) error {
	fs := newFlags(env, "results")
	nf := addNodeFlags(fs)
	screening := fs.String("screening", "", "screening id")
	decision := fs.String("decision", "", "only eligible, hold or ineligible")
	reason := fs.String("reason", "", "only units with this reason code, such as ACCOUNT_MISSING")
	query := fs.String("q", "", "name or USCC prefix")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *screening == "" {
		return fmt.Errorf("%w: --screening is required", ErrUsage)
	}
	n, err := nf.client()
	if err != nil {
		return err
	}
	req := &wengangv1.ListResultsRequest{County: *nf.county, ScreeningId: *screening, Query: *query, View: wengangv1.ResultView_RESULT_VIEW_REVIEWED}
	if *decision != "" {
		v, ok := wengangv1.Decision_value["DECISION_"+strings.ToUpper(*decision)]
		if !ok {
			return fmt.Errorf("%w: --decision %q: want eligible, hold or ineligible", ErrUsage, *decision)
		}
		req.Decisions = []wengangv1.Decision{wengangv1.Decision(v)}
	}
	if *reason != "" {
		v, ok := wengangv1.Reason_value["REASON_"+strings.ToUpper(*reason)]
		if !ok {
			return fmt.Errorf("%w: --reason %q is not a reason code", ErrUsage, *reason)
		}
		req.Reasons = []wengangv1.Reason{wengangv1.Reason(v)}
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "uscc\tname\tdecision\treasons\trefund(yuan)\tbatch")
	for {
		res, err := n.Screening.ListResults(env.Ctx, connect.NewRequest(req))
		if err != nil {
			return reportRPC(env, err)
		}
		for _, r := range res.Msg.GetResults() {
			var codes []string
			for _, c := range r.GetReasons() {
				codes = append(codes, strings.TrimPrefix(c.String(), "REASON_"))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.GetUscc(), r.GetName(), strings.ToLower(strings.TrimPrefix(r.GetDecision().String(), "DECISION_")),
				strings.Join(codes, "|"), money.FormatYuan(r.GetRefundFen()), r.GetBatchId())
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return tw.Flush()
}
