package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"connectrpc.com/connect"

	"wengang/internal/source"
	wengangv1 "wengang/proto/wengang/v1"
)

// chunkSize is the size of the chunks a file is streamed in (the contract
// allows up to 1 MiB).
const chunkSize = 512 << 10

// KindOf tells a source file's kind from its base name: units.csv,
// 参保单位.xlsx and the like.
func KindOf(path string) (wengangv1.SourceFileKind, error) {
	base := filepath.Base(path)
	k, err := source.ParseKind(strings.TrimSuffix(base, filepath.Ext(base)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", base, err)
	}
	return wengangv1.SourceFileKind(k), nil
}

// Upload streams the file at path into the county's dataset, creating the
// dataset if the name is new. The kind comes from the file name, the
// format from its extension; the file's SHA-256 goes in the header so that
// a truncated upload is refused.
func (n *Node) Upload(ctx context.Context, county, dataset, path, key string) (*wengangv1.ImportResponse, error) {
	kind, err := KindOf(path)
	if err != nil {
		return nil, err
	}
	format, err := source.FormatOf(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	stream := n.Import.Import(ctx)
	err = stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Header{Header: &wengangv1.ImportHeader{
		County: county, Dataset: dataset, Kind: kind, FileName: filepath.Base(path),
		Format: wengangv1.FileFormat(format), IdempotencyKey: key, Sha256: hex.EncodeToString(h.Sum(nil)),
	}}})
	buf := make([]byte, chunkSize)
	for err == nil {
		var m int
		m, err = io.ReadFull(f, buf)
		if m > 0 {
			if serr := stream.Send(&wengangv1.ImportRequest{Part: &wengangv1.ImportRequest_Chunk{Chunk: buf[:m]}}); serr != nil {
				err = serr
				break
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
			break
		}
	}
	if err != nil && !errors.Is(err, io.EOF) {
		// The server may have answered already (an early refusal): the
		// answer says why.
		if res, rerr := stream.CloseAndReceive(); rerr != nil {
			return nil, rerr
		} else if res != nil {
			return res.Msg, nil
		}
		return nil, err
	}
	res, err := stream.CloseAndReceive()
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// Export streams a screening's results into w: results.csv exactly as the
// offline `wengang screen --dir` writes it (FILE_FORMAT_CSV), or XLSX.
func (n *Node) Export(ctx context.Context, req *wengangv1.ExportResultsRequest, w io.Writer) error {
	stream, err := n.Screening.ExportResults(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		if _, err := w.Write(stream.Msg().GetChunk()); err != nil {
			return err
		}
	}
	return stream.Err()
}
