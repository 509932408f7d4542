package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"connectrpc.com/connect"

	"wengang/client"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
)

// ProgressCommands returns the commands that read the city's progress
// dashboard.
func ProgressCommands() []Command {
	return []Command{
		{Name: "progress", Summary: "工作进度: each county's refund against the plan's deadlines, from the city", Run: progressCmd},
	}
}

func progressCmd(env Env, args []string) error {
	fs := newFlags(env, "progress")
	city := fs.String("city", "", "city server URL, such as https://city.example:8443")
	token := fs.String("token", os.Getenv("WENGANG_TOKEN"), "bearer token (default $WENGANG_TOKEN)")
	ca := fs.String("ca", "", "CA certificate to trust for an https:// city")
	counties := fs.String("counties", "", "only these counties, comma separated (default: every county you may read)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *city == "" {
		return fmt.Errorf("%w: --city is required", ErrUsage)
	}
	if *token == "" {
		return fmt.Errorf("%w: --token (or $WENGANG_TOKEN) is required", ErrUsage)
	}
	c, err := client.NewCity(*city, client.Options{Token: *token, CAFile: *ca})
	if err != nil {
		return err
	}
	req := &wengangv1.GetProgressRequest{}
	if *counties != "" {
		req.Counties = strings.Split(*counties, ",")
	}
	resp, err := c.Progress.GetProgress(env.Ctx, connect.NewRequest(req))
	if err != nil {
		return reportRPC(env, err)
	}
	writeProgress(env, resp.Msg)
	return nil
}

// writeProgress prints the dashboard: one line per county and the total,
// counts and yuan.
func writeProgress(env Env, p *wengangv1.GetProgressResponse) {
	fmt.Fprintf(env.Stdout, "截至 %s　县级首笔支付时限 %s　全部支付时限 %s\n\n",
		dateOf(p.GetAsOf()), dateOf(p.GetCountyPayBy()), dateOf(p.GetAllPaidBy()))
	w := tabwriter.NewWriter(env.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "县区\t参保地\t筛查\t符合条件\t金额(元)\t已上报\t退回\t公示中\t已拨付\t已支付\t金额(元)\t退票\t在途\t首笔支付\t县级时限\t全部时限\t")
	line := func(c *wengangv1.CountyProgress) {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t\n",
			c.GetCounty(), c.GetCountyName(), c.GetScreenedCount(),
			c.GetEligible().GetCount(), money.FormatYuan(c.GetEligible().GetAmountFen()),
			c.GetReceived().GetCount(), c.GetRejected().GetCount(), c.GetInPublicity().GetCount(),
			c.GetReleased().GetCount(), c.GetPaid().GetCount(), money.FormatYuan(c.GetPaid().GetAmountFen()),
			c.GetReturned().GetCount(), c.GetOutstanding().GetCount(), orDash(dateOf(c.GetFirstPaidOn())),
			deadlineText(c.GetCountyDeadline()), deadlineText(c.GetFinalDeadline()))
	}
	for _, c := range p.GetCounties() {
		line(c)
	}
	if t := p.GetTotal(); t != nil {
		line(t)
	}
	w.Flush()
}

func dateOf(d *wengangv1.Date) string {
	if d == nil {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.GetYear(), d.GetMonth(), d.GetDay())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// deadlineText is a deadline status in Chinese.
func deadlineText(s wengangv1.DeadlineStatus) string {
	switch s {
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN:
		return "进行中"
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_MET:
		return "已完成"
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED:
		return "已逾期"
	}
	return "-"
}
