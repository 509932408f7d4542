package cli

import (
	"bufio"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"wengang/client"
	"wengang/internal/protoconv"
	"wengang/policy/civil"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// FinanceCommands returns the commands of finance and the city's finance
// officers against the city's FinanceService.
func FinanceCommands() []Command {
	return []Command{
		{Name: "instructions", Summary: "支付指令: pull (to JSON lines, resumable) or ack payment instructions, from the city", Run: instructionsCmd},
		{Name: "payments", Summary: "支付结果: report paid/returned results from a CSV file to the city", Run: paymentsCmd},
		{Name: "funding", Summary: "资金拨付: list or confirm funding requests", Run: fundingCmd},
		{Name: "reconcile", Summary: "对账: released = paid + returned + outstanding, per county, in counts and yuan", Run: reconcileCmd},
		{Name: "pain001", Summary: "export outstanding instructions as an ISO 20022 pain.001.001.09 file", Run: pain001Cmd},
		{Name: "pain002", Summary: "import a bank's ISO 20022 pain.002 payment status report", Run: pain002Cmd},
	}
}

// financeFlags adds the flags that reach the city's FinanceService and
// returns a function making its client once the flags are parsed.
func financeFlags(fs *flag.FlagSet) func() (wengangv1connect.FinanceServiceClient, error) {
	city := fs.String("city", "", "city server URL, such as https://city.example:8443")
	token := fs.String("token", os.Getenv("WENGANG_TOKEN"), "bearer token (default $WENGANG_TOKEN)")
	ca := fs.String("ca", "", "CA certificate to trust for an https:// city")
	return func() (wengangv1connect.FinanceServiceClient, error) {
		if *city == "" {
			return nil, fmt.Errorf("%w: --city is required", ErrUsage)
		}
		if *token == "" {
			return nil, fmt.Errorf("%w: --token (or $WENGANG_TOKEN) is required", ErrUsage)
		}
		c, err := client.NewCity(*city, client.Options{Token: *token, CAFile: *ca})
		if err != nil {
			return nil, err
		}
		return c.Finance, nil
	}
}

// subcommand splits "VERB args..." off args, checking VERB is one of verbs.
func subcommand(args []string, verbs ...string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, fmt.Errorf("%w: want one of %s", ErrUsage, strings.Join(verbs, ", "))
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, fmt.Errorf("%w: %q is not one of %s", ErrUsage, args[0], strings.Join(verbs, ", "))
}

func instructionsCmd(env Env, args []string) error {
	verb, args, err := subcommand(args, "pull", "ack")
	if err != nil {
		return err
	}
	if verb == "ack" {
		return ackCmd(env, args)
	}
	fs := newFlags(env, "instructions pull")
	finance := financeFlags(fs)
	out := fs.String("out", "", "JSON lines file to append the instructions to (one PaymentInstruction each)")
	cursorFile := fs.String("cursor-file", "", "file keeping the cursor: read to resume, rewritten after each stored message")
	counties := fs.String("counties", "", "only these counties, comma separated (default: all you may read)")
	pageSize := fs.Int("page-size", 0, "instructions per message (default 500, at most 5000)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", ErrUsage)
	}
	c, err := finance()
	if err != nil {
		return err
	}
	req := &wengangv1.PullInstructionsRequest{Counties: splitList(*counties), PageSize: int32(*pageSize)}
	if *cursorFile != "" {
		b, err := os.ReadFile(*cursorFile)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		req.Cursor = strings.TrimSpace(string(b))
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := c.PullInstructions(env.Ctx, connect.NewRequest(req))
	if err != nil {
		return reportRPC(env, err)
	}
	n, cursor := 0, req.Cursor
	for st.Receive() {
		w := bufio.NewWriter(f)
		for _, i := range st.Msg().GetInstructions() {
			b, err := protojson.Marshal(i)
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		// The cursor only after the instructions are stored: a crash
		// between the two pulls a message twice, never loses one.
		n, cursor = n+len(st.Msg().GetInstructions()), st.Msg().GetCursor()
		if *cursorFile != "" {
			if err := writeAtomic(*cursorFile, func(w io.Writer) error { _, err := io.WriteString(w, cursor+"\n"); return err }); err != nil {
				return err
			}
		}
	}
	if err := st.Err(); err != nil {
		return reportRPC(env, err)
	}
	fmt.Fprintf(env.Stdout, "pulled %d instruction(s) into %s (拉取支付指令)\ncursor: %s\n", n, *out, orDashFin(cursor))
	return f.Close()
}

func orDashFin(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ackCmd(env Env, args []string) error {
	fs := newFlags(env, "instructions ack")
	finance := financeFlags(fs)
	file := fs.String("file", "", "file of instruction ids, one a line (or the ids as arguments)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ids := fs.Args()
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				ids = append(ids, l)
			}
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: instruction ids are required (as arguments or --file)", ErrUsage)
	}
	c, err := finance()
	if err != nil {
		return err
	}
	n := 0
	for start := 0; start < len(ids); start += 5000 {
		res, err := c.AckInstructions(env.Ctx, connect.NewRequest(&wengangv1.AckInstructionsRequest{InstructionIds: ids[start:min(start+5000, len(ids))]}))
		if err != nil {
			return reportRPC(env, err)
		}
		n += len(res.Msg.GetInstructions())
	}
	fmt.Fprintf(env.Stdout, "acknowledged %d instruction(s) (已确认接收)\n", n)
	return nil
}

// paymentsCmd reports results from a CSV file with the header
// instruction_id,outcome,bank_reference,date,reason[,reason_code]; outcome
// is paid or returned, date YYYY-MM-DD. Results go in requests of 5000,
// each all or nothing; a rerun after a failure is safe (idempotent).
func paymentsCmd(env Env, args []string) error {
	_, args, err := subcommand(args, "report")
	if err != nil {
		return err
	}
	fs := newFlags(env, "payments report")
	finance := financeFlags(fs)
	file := fs.String("file", "", "results.csv: instruction_id,outcome,bank_reference,date,reason[,reason_code]")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("%w: --file is required", ErrUsage)
	}
	results, err := readResults(env, *file)
	if err != nil {
		return err
	}
	c, err := finance()
	if err != nil {
		return err
	}
	var paid, returned int
	for start := 0; start < len(results); start += 5000 {
		res, err := c.ReportResults(env.Ctx, connect.NewRequest(&wengangv1.ReportResultsRequest{Results: results[start:min(start+5000, len(results))]}))
		if err != nil {
			if start > 0 {
				fmt.Fprintf(env.Stderr, "the first %d result(s) were recorded; rerun after fixing the file\n", start)
			}
			return reportRPC(env, err)
		}
		for _, i := range res.Msg.GetInstructions() {
			switch i.GetState() {
			case wengangv1.PaymentState_PAYMENT_STATE_PAID:
				paid++
			case wengangv1.PaymentState_PAYMENT_STATE_RETURNED, wengangv1.PaymentState_PAYMENT_STATE_REISSUED:
				returned++
			}
		}
	}
	fmt.Fprintf(env.Stdout, "reported %d result(s): %d paid (已支付), %d returned (退票)\n", len(results), paid, returned)
	return nil
}

// readResults reads a results file, naming every bad line on env.Stderr.
func readResults(env Env, path string) ([]*wengangv1.PaymentResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(recs) == 0 || strings.TrimPrefix(strings.Join(recs[0], ","), "\ufeff") != "instruction_id,outcome,bank_reference,date,reason" &&
		strings.TrimPrefix(strings.Join(recs[0], ","), "\ufeff") != "instruction_id,outcome,bank_reference,date,reason,reason_code" {
		return nil, fmt.Errorf("%s: the header must be instruction_id,outcome,bank_reference,date,reason[,reason_code]", path)
	}
	var (
		out []*wengangv1.PaymentResult
		bad int
	)
	for n, rec := range recs[1:] {
		line := n + 2
		if len(rec) < 5 {
			fmt.Fprintf(env.Stderr, "%s:%d: %d fields, want 5 or 6\n", path, line, len(rec))
			bad++
			continue
		}
		id, outcome, ref, date, reason := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2]), strings.TrimSpace(rec[3]), strings.TrimSpace(rec[4])
		code := ""
		if len(rec) > 5 {
			code = strings.TrimSpace(rec[5])
		}
		d, err := civil.ParseDate(date)
		if err != nil {
			fmt.Fprintf(env.Stderr, "%s:%d: date: %v\n", path, line, err)
			bad++
			continue
		}
		switch outcome {
		case "paid":
			out = append(out, &wengangv1.PaymentResult{InstructionId: id, Outcome: &wengangv1.PaymentResult_Paid{Paid: &wengangv1.PaidResult{BankReference: ref, PaidOn: protoconv.Date(d)}}})
		case "returned":
			out = append(out, &wengangv1.PaymentResult{InstructionId: id, Outcome: &wengangv1.PaymentResult_Returned{Returned: &wengangv1.ReturnedResult{
				Reason: reason, ReasonCode: code, ReturnedOn: protoconv.Date(d), BankReference: ref}}})
		default:
			fmt.Fprintf(env.Stderr, "%s:%d: outcome %q: want paid or returned\n", path, line, outcome)
			bad++
		}
	}
	if bad > 0 {
		return nil, ErrReported
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no results", path)
	}
	return out, nil
}

func fundingCmd(env Env, args []string) error {
	verb, args, err := subcommand(args, "list", "confirm")
	if err != nil {
		return err
	}
	fs := newFlags(env, "funding "+verb)
	finance := financeFlags(fs)
	var (
		state, round, counties *string
		id, ref, date          *string
	)
	if verb == "list" {
		state = fs.String("state", "", "requested or confirmed (default both)")
		round = fs.String("round", "", "only this round's")
		counties = fs.String("counties", "", "only these counties, comma separated")
	} else {
		id = fs.String("id", "", "the funding request's id")
		ref = fs.String("reference", "", "the funding voucher's reference (拨付凭证号)")
		date = fs.String("date", "", "when the funds were allocated, YYYY-MM-DD (default the city's business date)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if verb == "confirm" {
		if *id == "" || *ref == "" {
			return fmt.Errorf("%w: --id and --reference are required", ErrUsage)
		}
		req := &wengangv1.ConfirmFundingRequest{FundingRequestId: *id, Reference: *ref}
		if *date != "" {
			d, err := civil.ParseDate(*date)
			if err != nil {
				return fmt.Errorf("%w: --date: %v", ErrUsage, err)
			}
			req.ConfirmedOn = protoconv.Date(d)
		}
		c, err := finance()
		if err != nil {
			return err
		}
		res, err := c.ConfirmFunding(env.Ctx, connect.NewRequest(req))
		if err != nil {
			return reportRPC(env, err)
		}
		f := res.Msg.GetFundingRequest()
		fmt.Fprintf(env.Stdout, "funding request %s of county %s confirmed (资金已拨付): %d instruction(s), %s yuan, reference %s, on %s\n",
			f.GetFundingRequestId(), f.GetCounty(), f.GetInstructionCount(), money.FormatYuan(f.GetTotalFen()), f.GetReference(), finDate(f.GetConfirmedOn()))
		return nil
	}
	req := &wengangv1.ListFundingRequestsRequest{RoundId: *round, Counties: splitList(*counties), PageSize: 1000}
	switch *state {
	case "":
	case "requested":
		req.State = wengangv1.FundingState_FUNDING_STATE_REQUESTED
	case "confirmed":
		req.State = wengangv1.FundingState_FUNDING_STATE_CONFIRMED
	default:
		return fmt.Errorf("%w: --state %q: want requested or confirmed", ErrUsage, *state)
	}
	c, err := finance()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "拨付申请\t批次\t县区\t笔数\t金额(元)\t状态\t凭证号\t拨付日期")
	for {
		res, err := c.ListFundingRequests(env.Ctx, connect.NewRequest(req))
		if err != nil {
			return reportRPC(env, err)
		}
		for _, f := range res.Msg.GetFundingRequests() {
			st := "待拨付"
			if f.GetState() == wengangv1.FundingState_FUNDING_STATE_CONFIRMED {
				st = "已拨付"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", f.GetFundingRequestId(), f.GetRoundId(), f.GetCounty(), f.GetInstructionCount(),
				money.FormatYuan(f.GetTotalFen()), st, orDashFin(f.GetReference()), orDashFin(finDate(f.GetConfirmedOn())))
		}
		if req.PageToken = res.Msg.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return w.Flush()
}

func finDate(d *wengangv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

func reconcileCmd(env Env, args []string) error {
	fs := newFlags(env, "reconcile")
	finance := financeFlags(fs)
	counties := fs.String("counties", "", "only these counties, comma separated")
	round := fs.String("round", "", "only this round's instructions")
	year := fs.Int("year", 0, "only this policy year")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := finance()
	if err != nil {
		return err
	}
	res, err := c.GetReconciliation(env.Ctx, connect.NewRequest(&wengangv1.GetReconciliationRequest{Counties: splitList(*counties), RoundId: *round, PolicyYear: int32(*year)}))
	if err != nil {
		return reportRPC(env, err)
	}
	writeReconciliation(env.Stdout, res.Msg)
	if !res.Msg.GetTotal().GetBalanced() {
		fmt.Fprintln(env.Stderr, "NOT BALANCED: released ≠ paid + returned + outstanding (账不平)")
		return ErrReported
	}
	return nil
}

// writeReconciliation prints one line per county and the total: released
// = paid + returned + outstanding, in counts and yuan, and whether each
// balances.
func writeReconciliation(out io.Writer, r *wengangv1.GetReconciliationResponse) {
	fmt.Fprintf(out, "对账 截至 %s　released = paid + returned + outstanding\n\n", finDate(r.GetAsOf()))
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "县区\t下达\t金额(元)\t已支付\t金额(元)\t退票\t金额(元)\t在途\t金额(元)\t重发\t金额(元)\t已拨付\t金额(元)\t平衡\t")
	line := func(name string, c *wengangv1.CountyReconciliation) {
		ok := "是"
		if !c.GetBalanced() {
			ok = "否"
		}
		fmt.Fprintf(w, "%s\t", name)
		for _, t := range []*wengangv1.Tally{c.GetReleased(), c.GetPaid(), c.GetReturned(), c.GetOutstanding(), c.GetReissued(), c.GetFunded()} {
			fmt.Fprintf(w, "%d\t%s\t", t.GetCount(), money.FormatYuan(t.GetAmountFen()))
		}
		fmt.Fprintf(w, "%s\t\n", ok)
	}
	for _, c := range r.GetCounties() {
		line(c.GetCounty(), c)
	}
	line("合计", r.GetTotal())
	w.Flush()
	if r.GetTotal().GetBalanced() {
		fmt.Fprintln(out, "\nbalanced (账平)")
	}
}

func pain001Cmd(env Env, args []string) error {
	fs := newFlags(env, "pain001")
	finance := financeFlags(fs)
	funding := fs.String("funding", "", "every outstanding instruction of this funding request")
	ids := fs.String("ids", "", "or these instructions, comma separated")
	msgID := fs.String("message-id", "", "GrpHdr/MsgId, at most 35 characters (default derived from the selection)")
	out := fs.String("out", "", "the XML file to write")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" || (*funding == "") == (*ids == "") {
		return fmt.Errorf("%w: --out and one of --funding or --ids are required", ErrUsage)
	}
	c, err := finance()
	if err != nil {
		return err
	}
	st, err := c.ExportPain001(env.Ctx, connect.NewRequest(&wengangv1.ExportPain001Request{FundingRequestId: *funding, InstructionIds: splitList(*ids), MessageId: *msgID}))
	if err != nil {
		return reportRPC(env, err)
	}
	var n int
	err = writeAtomic(*out, func(w io.Writer) error {
		for st.Receive() {
			k, err := w.Write(st.Msg().GetChunk())
			n += k
			if err != nil {
				return err
			}
		}
		return st.Err()
	})
	if err != nil {
		return reportRPC(env, err)
	}
	fmt.Fprintf(env.Stdout, "wrote %s (%d bytes, pain.001.001.09)\n", *out, n)
	return nil
}

func pain002Cmd(env Env, args []string) error {
	fs := newFlags(env, "pain002")
	finance := financeFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: one pain.002 file is required", ErrUsage)
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := finance()
	if err != nil {
		return err
	}
	st := c.ImportPain002(env.Ctx)
	buf := make([]byte, 256<<10)
	first := true
	for {
		k, rerr := f.Read(buf)
		if k > 0 || first {
			msg := &wengangv1.ImportPain002Request{Chunk: append([]byte(nil), buf[:k]...)}
			if first {
				msg.FileName = path
				first = false
			}
			if err := st.Send(msg); err != nil {
				break // the server's answer says why
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	res, err := st.CloseAndReceive()
	if err != nil {
		return reportRPC(env, err)
	}
	m := res.Msg
	fmt.Fprintf(env.Stdout, "imported %s: %d paid (%s yuan), %d returned (%s yuan), %d unchanged\n", path,
		m.GetPaid().GetCount(), money.FormatYuan(m.GetPaid().GetAmountFen()), m.GetReturned().GetCount(), money.FormatYuan(m.GetReturned().GetAmountFen()), m.GetUnchangedCount())
	return nil
}
