package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/rpc"
	"wengang/internal/source"
	"wengang/node/store"
	"wengang/policy/refund"
	"wengang/policy/uscc"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/proto/wengang/v1/wengangv1connect"
)

// MaxImportBytes is the largest source file Import takes: a larger one is
// refused with RESOURCE_EXHAUSTED as soon as its bytes pass the limit.
const MaxImportBytes = 512 << 20

// maxListedWarnings bounds the warnings listed in one answer; the counts
// cover them all.
const maxListedWarnings = 1000

// Import takes one source file into a dataset of the county (import.proto):
// the header first, then the file's bytes in chunks. The file is parsed as
// a whole, all or nothing (source.Parse); a unit of another county is a bad
// row. It goes in with its rows through CopyFrom, replacing a file of the
// same kind, with an audit entry, in one transaction.
func (s *ImportService) Import(ctx context.Context, stream *connect.ClientStream[wengangv1.ImportRequest]) (*connect.Response[wengangv1.ImportResponse], error) {
	if !stream.Receive() {
		if err := stream.Err(); err != nil {
			return nil, err
		}
		var bad rpc.Fields
		bad.Add("header", "the stream is empty: its first message must be the header (首条消息须为文件头)")
		return nil, bad.Err()
	}
	h, err := s.importHeader(stream.Msg().GetHeader())
	if err != nil {
		return nil, err
	}
	data, sum, err := receiveFile(stream)
	if err != nil {
		return nil, err
	}
	hexSum := hex.EncodeToString(sum[:])
	if h.sha256 != "" && h.sha256 != hexSum {
		var bad rpc.Fields
		bad.Add("sha256", "the file's bytes hash to %s, not %s: the upload is incomplete or changed (文件校验失败)", hexSum, h.sha256)
		return nil, bad.Err()
	}
	request := sha256.Sum256([]byte(strings.Join([]string{h.county, h.dataset, string(h.kind), h.fileName, h.format.String(), hexSum}, "\x00")))
	if h.key != "" {
		first, response, found, err := s.Store.ImportReplay(ctx, h.county, h.key)
		if err != nil {
			return nil, err
		}
		if found {
			return importReplay(first, request, response)
		}
	}
	if rep, err := s.Store.GetDatasetReportByName(ctx, h.county, h.dataset); err == nil && rep.State == store.DatasetSealed {
		// Refused before parsing (the store refuses it again).
		return nil, fault.New(fault.ErrFailedPrecondition, "dataset %q is sealed: nothing more can be imported into it (数据集已封存)", h.dataset)
	}

	t, err := source.Parse(h.sourceKind, h.parseName, data, source.Options{})
	if err != nil {
		return nil, err
	}
	size := int64(len(data))
	up := &store.Upload{
		County: h.county, Dataset: h.dataset, Kind: h.kind,
		File:      store.FileMeta{Name: h.fileName, Format: h.format.String(), Encoding: t.File.Encoding.String(), SHA256: sum},
		SizeBytes: size, ImportedBy: caller(ctx).Subject,
		Units: t.Units, Contributions: t.Contributions, Accounts: t.Accounts, Exclusions: t.Exclusions,
		Key: h.key, RequestSHA256: request,
	}
	var warnings []source.Warning
	if h.kind == store.FileUnits {
		if errs := otherCounties(h, t, data); len(errs) > 0 {
			return nil, errs
		}
		warnings = orgCodeWarnings(t)
	} else {
		up.Lines = t.Lines
		known, err := s.Store.KnownUnits(ctx, h.county, h.dataset)
		if err != nil {
			return nil, err
		}
		if len(known) > 0 {
			warnings = unknownUnitWarnings(known, t)
		}
	}
	up.WarningCount = int64(len(warnings))
	by := caller(ctx)
	reply, err := s.Store.ImportFile(ctx, up, func(rep store.DatasetReport) ([]byte, audit.Entry, error) {
		res := &wengangv1.ImportResponse{Dataset: datasetMessage(rep), Warnings: warningMessages(warnings)}
		for _, f := range res.Dataset.GetFiles() {
			if f.GetKind() == wengangv1.SourceFileKind(h.sourceKind) {
				res.File = f
			}
		}
		b, err := proto.Marshal(res)
		if err != nil {
			return nil, audit.Entry{}, err
		}
		detail, _ := json.Marshal(map[string]any{
			"dataset": rep.Name, "kind": h.kind, "file_name": h.fileName, "format": h.format.String(),
			"sha256": hexSum, "size_bytes": size, "rows": t.File.Rows, "warnings": len(warnings),
		})
		return b, audit.Entry{Domain: h.county, At: s.Now(), Actor: by, Action: wengangv1connect.ImportServiceImportProcedure,
			ObjectType: "dataset", ObjectID: strconv.FormatInt(rep.ID, 10), Detail: string(detail)}, nil
	})
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ImportResponse{}
	if err := proto.Unmarshal(reply.Response, res); err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}

// importReplay answers a repeated idempotency key with its first answer,
// or refuses a key used for another file.
func importReplay(first, request [32]byte, response []byte) (*connect.Response[wengangv1.ImportResponse], error) {
	if first != request {
		return nil, fault.New(fault.ErrConflict, "the idempotency key was used for another file (幂等键已用于其他文件)")
	}
	res := &wengangv1.ImportResponse{}
	if err := proto.Unmarshal(response, res); err != nil {
		return nil, err
	}
	return connect.NewResponse(res), nil
}

// importHead is a checked ImportHeader.
type importHead struct {
	county, dataset, fileName string
	kind                      store.FileKind
	sourceKind                source.Kind
	format                    source.Format
	parseName                 string // the name source.Parse reads, with the format's extension
	key, sha256               string
}

// importHeader checks the header of an Import stream: every bad field is
// named (FieldViolations), then the county must be served here.
func (s *ImportService) importHeader(h *wengangv1.ImportHeader) (importHead, error) {
	var bad rpc.Fields
	if h == nil {
		bad.Add("header", "the first message must be the header (首条消息须为文件头)")
		return importHead{}, bad.Err()
	}
	ih := importHead{county: strings.TrimSpace(h.GetCounty()), dataset: strings.TrimSpace(h.GetDataset()),
		fileName: strings.TrimSpace(h.GetFileName()), key: h.GetIdempotencyKey(), sha256: h.GetSha256()}
	if ih.county == "" {
		bad.Add("county", "required")
	}
	if n := utf8.RuneCountInString(ih.dataset); n < 1 || n > 64 {
		bad.Add("dataset", "the dataset name must have 1 to 64 characters, not %d", n)
	}
	if k := h.GetKind(); k < wengangv1.SourceFileKind_SOURCE_FILE_KIND_UNITS || k > wengangv1.SourceFileKind_SOURCE_FILE_KIND_EXCLUSIONS {
		bad.Add("kind", "unknown kind of source file %v (want units, contributions, accounts or exclusions)", k)
	} else {
		ih.sourceKind = source.Kind(k) // the enums share their order
		ih.kind = store.FileKind(ih.sourceKind.String())
	}
	if ih.fileName == "" {
		bad.Add("file_name", "required")
	} else if strings.ContainsAny(ih.fileName, "/\\") {
		ih.fileName = filepath.Base(strings.ReplaceAll(ih.fileName, "\\", "/"))
	}
	byName, nameErr := source.FormatOf(ih.fileName)
	switch f := h.GetFormat(); f {
	case wengangv1.FileFormat_FILE_FORMAT_UNSPECIFIED:
		if nameErr != nil && ih.fileName != "" {
			bad.Add("format", "unspecified, and the file name %q does not end in .csv or .xlsx", ih.fileName)
		}
		ih.format = byName
	case wengangv1.FileFormat_FILE_FORMAT_CSV, wengangv1.FileFormat_FILE_FORMAT_XLSX:
		ih.format = source.Format(f)
		if nameErr == nil && byName != ih.format {
			bad.Add("format", "%s, but the file name %q says %s", ih.format, ih.fileName, byName)
		}
	default:
		bad.Add("format", "unknown format %v (want CSV or XLSX)", f)
	}
	ih.parseName = ih.fileName
	if nameErr != nil && ih.format != 0 {
		ih.parseName = ih.fileName + "." + ih.format.String()
	}
	if ih.sha256 != "" {
		if b, err := hex.DecodeString(ih.sha256); err != nil || len(b) != sha256.Size || strings.ToLower(ih.sha256) != ih.sha256 {
			bad.Add("sha256", "not a lowercase hex SHA-256")
		}
	}
	if len(ih.key) > 200 {
		bad.Add("idempotency_key", "longer than 200 bytes")
	}
	if err := bad.Err(); err != nil {
		return importHead{}, err
	}
	return ih, s.serves(ih.county)
}

// receiveFile reads the rest of an Import stream: chunks only, at most
// MaxImportBytes in all. It returns the file and its SHA-256.
func receiveFile(stream *connect.ClientStream[wengangv1.ImportRequest]) ([]byte, [32]byte, error) {
	var (
		chunks [][]byte
		size   int
		sum    [32]byte
	)
	h := sha256.New()
	for stream.Receive() {
		msg := stream.Msg()
		if msg.GetHeader() != nil {
			var bad rpc.Fields
			bad.Add("header", "only the first message may be a header (仅首条消息为文件头)")
			return nil, sum, bad.Err()
		}
		chunk := msg.GetChunk()
		size += len(chunk)
		if size > MaxImportBytes {
			return nil, sum, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("the file is larger than the node's limit of %d MiB (文件过大)", MaxImportBytes>>20))
		}
		h.Write(chunk)
		chunks = append(chunks, chunk)
	}
	if err := stream.Err(); err != nil {
		return nil, sum, err
	}
	h.Sum(sum[:0])
	if len(chunks) == 1 {
		return chunks[0], sum, nil
	}
	data := make([]byte, 0, size)
	for _, c := range chunks {
		data = append(data, c...)
	}
	return data, sum, nil
}

// otherCounties names every unit row whose county (参保地, normalized) is
// not the import's: a county imports its own units only.
func otherCounties(h importHead, t *source.Table, data []byte) source.Errors {
	var errs source.Errors
	column := ""
	for i := range t.Units {
		u := &t.Units[i]
		if u.County == h.county {
			continue
		}
		if column == "" {
			column = countyHeader(h.format, data)
		}
		errs = append(errs, source.RowError{File: h.parseName, Line: int(t.Lines[i]), Column: column,
			Reason: fmt.Sprintf("unit %s belongs to county %s, not %s: import it into its own county (非本县单位)", u.USCC, u.County, h.county)})
	}
	return errs
}

// countyHeader returns the header of the county column as the file writes
// it ("county" or "参保地"), for naming it in bad rows.
func countyHeader(format source.Format, data []byte) string {
	var header []string
	switch format {
	case source.CSV:
		text := bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			text = text[:i]
		}
		if !utf8.Valid(text) {
			if dec, err := simplifiedchinese.GB18030.NewDecoder().Bytes(text); err == nil {
				text = dec
			}
		}
		header, _ = csv.NewReader(bytes.NewReader(text)).Read()
	case source.XLSX:
		f, err := excelize.OpenReader(bytes.NewReader(data))
		if err != nil {
			break
		}
		defer f.Close()
		if rows, err := f.Rows(f.GetSheetName(0)); err == nil {
			if rows.Next() {
				header, _ = rows.Columns()
			}
			rows.Close()
		}
	}
	for _, name := range header {
		n := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\uFEFF")))
		if n == "county" || n == "参保地" {
			return strings.TrimSpace(strings.TrimPrefix(name, "\uFEFF"))
		}
	}
	return "county"
}

// orgCodeWarnings warns of units whose USCC embeds an organization code
// (GB 11714) with a wrong check digit: accepted, worth a look.
func orgCodeWarnings(t *source.Table) []source.Warning {
	var ws []source.Warning
	for i := range t.Units {
		code := t.Units[i].USCC
		if st, err := uscc.Check(code); err == nil && st == uscc.Valid && !uscc.OrgCodeValid(code) {
			ws = append(ws, source.Warning{File: t.File.Name, Line: int(t.Lines[i]), Column: "uscc",
				Reason: fmt.Sprintf("%s: the organization code in characters 9-17 fails its GB 11714 check digit (组织机构代码校验位不符)", code)})
		}
	}
	return ws
}

// unknownUnitWarnings warns of the rows of t whose USCC is not among known
// units, as the offline reader words it (source.UnknownUnits).
func unknownUnitWarnings(known map[string]bool, t *source.Table) []source.Warning {
	units := &source.Table{File: source.File{Kind: source.Units}, Units: make([]refund.Unit, 0, len(known))}
	for code := range known {
		units.Units = append(units.Units, refund.Unit{USCC: code})
	}
	return source.UnknownUnits([]*source.Table{units, t})
}

// warningMessages lists up to maxListedWarnings warnings.
func warningMessages(ws []source.Warning) []*wengangv1.RowViolation {
	var out []*wengangv1.RowViolation
	for i, w := range ws {
		if i == maxListedWarnings {
			break
		}
		out = append(out, &wengangv1.RowViolation{File: w.File, Line: int64(w.Line), Column: w.Column, Reason: w.Reason})
	}
	return out
}

// SealDataset seals an open dataset that has every kind of file, with its
// content hash and an audit entry, and reports the rows whose USCC is not
// a unit of it. A sealed dataset is returned as it is.
func (s *ImportService) SealDataset(ctx context.Context, req *connect.Request[wengangv1.SealDatasetRequest]) (*connect.Response[wengangv1.SealDatasetResponse], error) {
	m := req.Msg
	rep, err := s.findDataset(ctx, m.GetCounty(), m.GetDatasetId(), m.GetDatasetName())
	if err != nil {
		return nil, err
	}
	if rep, err = sealDataset(ctx, s.Deps, rep, wengangv1connect.ImportServiceSealDatasetProcedure); err != nil {
		return nil, err
	}
	rows, err := s.Store.UnknownRows(ctx, rep.County, rep.ID)
	if err != nil {
		return nil, err
	}
	ws := unknownRowWarnings(rows)
	return connect.NewResponse(&wengangv1.SealDatasetResponse{Dataset: datasetMessage(rep),
		Warnings: warningMessages(ws), WarningCount: int64(len(ws))}), nil
}

// sealDataset seals rep (open or sealed) in the caller's name, the audit
// entry naming action.
func sealDataset(ctx context.Context, d *Deps, rep store.DatasetReport, action string) (store.DatasetReport, error) {
	if rep.State == store.DatasetSealed {
		return rep, nil
	}
	by := caller(ctx)
	rep, _, err := d.Store.Seal(ctx, rep.County, rep.ID, by.Subject, d.Now(), func(r store.DatasetReport) audit.Entry {
		detail, _ := json.Marshal(map[string]any{"dataset": r.Name, "content_hash": r.ContentHash, "files": len(r.Files), "units": r.UnitCount})
		return audit.Entry{Domain: r.County, At: d.Now(), Actor: by, Action: action,
			ObjectType: "dataset", ObjectID: strconv.FormatInt(r.ID, 10), Detail: string(detail)}
	})
	return rep, err
}

// unknownRowWarnings words rows whose USCC is not a unit as the offline
// reader does: one warning per file and USCC, at its first line.
func unknownRowWarnings(rows []store.UnknownRow) []source.Warning {
	var tables []*source.Table
	var t *source.Table
	for _, r := range rows {
		if t == nil || t.File.Name != r.File || t.File.Kind != source.Kind(kindIndex(r.Kind)) {
			t = &source.Table{File: source.File{Name: r.File, Kind: source.Kind(kindIndex(r.Kind))}}
			tables = append(tables, t)
		}
		t.Lines = append(t.Lines, r.Line)
		switch r.Kind {
		case store.FileContributions:
			t.Contributions = append(t.Contributions, refund.Contribution{USCC: r.USCC})
		case store.FileAccounts:
			t.Accounts = append(t.Accounts, refund.Account{USCC: r.USCC})
		case store.FileExclusions:
			t.Exclusions = append(t.Exclusions, refund.Exclusion{USCC: r.USCC})
		}
	}
	return source.UnknownUnits(tables)
}

// kindIndex is the position of k among the kinds, from 1 (as source.Kind
// and SourceFileKind count them).
func kindIndex(k store.FileKind) int {
	for i, x := range store.FileKinds() {
		if x == k {
			return i + 1
		}
	}
	return 0
}

// GetDataset returns one dataset of the county, by id or by name.
func (s *ImportService) GetDataset(ctx context.Context, req *connect.Request[wengangv1.GetDatasetRequest]) (*connect.Response[wengangv1.GetDatasetResponse], error) {
	m := req.Msg
	rep, err := s.findDataset(ctx, m.GetCounty(), m.GetDatasetId(), m.GetDatasetName())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&wengangv1.GetDatasetResponse{Dataset: datasetMessage(rep)}), nil
}

// ListDatasets lists the county's datasets, newest first, a page at a time.
func (s *ImportService) ListDatasets(ctx context.Context, req *connect.Request[wengangv1.ListDatasetsRequest]) (*connect.Response[wengangv1.ListDatasetsResponse], error) {
	m := req.Msg
	var bad rpc.Fields
	county := strings.TrimSpace(m.GetCounty())
	if county == "" {
		bad.Add("county", "required")
	}
	size := rpc.PageSize(&bad, m.GetPageSize(), 50)
	page := store.DatasetPage{Limit: size + 1}
	switch m.GetState() {
	case wengangv1.DatasetState_DATASET_STATE_UNSPECIFIED:
	case wengangv1.DatasetState_DATASET_STATE_OPEN:
		page.State = store.DatasetOpen
	case wengangv1.DatasetState_DATASET_STATE_SEALED:
		page.State = store.DatasetSealed
	default:
		bad.Add("state", "unknown state %v", m.GetState())
	}
	if tok := m.GetPageToken(); tok != "" {
		page.BeforeID = rpc.ReadIDPageToken(&bad, "datasets/"+county, tok)
	}
	if err := bad.Err(); err != nil {
		return nil, err
	}
	if err := s.serves(county); err != nil {
		return nil, err
	}
	reps, err := s.Store.ListDatasetReports(ctx, county, page)
	if err != nil {
		return nil, err
	}
	res := &wengangv1.ListDatasetsResponse{}
	if len(reps) > size {
		reps = reps[:size]
		res.NextPageToken = rpc.IDPageToken("datasets/"+county, reps[size-1].ID)
	}
	for _, r := range reps {
		res.Datasets = append(res.Datasets, datasetMessage(r))
	}
	return connect.NewResponse(res), nil
}

// findDataset returns a dataset of county named by id or by name.
func (s *Deps) findDataset(ctx context.Context, county, id, name string) (store.DatasetReport, error) {
	var bad rpc.Fields
	county = strings.TrimSpace(county)
	if county == "" {
		bad.Add("county", "required")
	}
	var n int64
	switch {
	case id != "":
		var err error
		if n, err = strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
			bad.Add("dataset_id", "%q is not a dataset id", id)
		}
	case strings.TrimSpace(name) == "":
		bad.Add("dataset", "a dataset_id or a dataset_name is required")
	}
	if err := bad.Err(); err != nil {
		return store.DatasetReport{}, err
	}
	if err := s.serves(county); err != nil {
		return store.DatasetReport{}, err
	}
	if id != "" {
		return s.Store.GetDatasetReport(ctx, county, n)
	}
	return s.Store.GetDatasetReportByName(ctx, county, strings.TrimSpace(name))
}

// datasetMessage returns a dataset as a message.
func datasetMessage(rep store.DatasetReport) *wengangv1.Dataset {
	d := &wengangv1.Dataset{
		DatasetId: strconv.FormatInt(rep.ID, 10), County: rep.County, Name: rep.Name,
		State: wengangv1.DatasetState_DATASET_STATE_OPEN, ContentHash: rep.ContentHash, UnitCount: rep.UnitCount,
		CreatedAt: timestamppb.New(rep.CreatedAt), SealedBy: rep.SealedBy,
	}
	if rep.State == store.DatasetSealed {
		d.State = wengangv1.DatasetState_DATASET_STATE_SEALED
		d.SealedAt = timestamppb.New(rep.SealedAt)
	}
	for i, f := range rep.Files {
		format := wengangv1.FileFormat_FILE_FORMAT_CSV
		if f.Format == "xlsx" {
			format = wengangv1.FileFormat_FILE_FORMAT_XLSX
		}
		msg := &wengangv1.DatasetFile{
			Kind: wengangv1.SourceFileKind(kindIndex(f.Kind)), FileName: f.Name, Format: format,
			Sha256: hex.EncodeToString(f.SHA256[:]), RowCount: int64(f.Rows), ImportedAt: timestamppb.New(f.ImportedAt),
		}
		if i < len(rep.Reports) {
			r := rep.Reports[i]
			msg.SizeBytes, msg.WarningCount, msg.ImportedBy = r.SizeBytes, r.WarningCount, r.ImportedBy
		}
		d.Files = append(d.Files, msg)
	}
	return d
}
