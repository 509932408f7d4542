package portal_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestChromiumScreenshot renders the round page in headless Chromium and
// checks that the picture has text on it. It skips when chromium is
// missing, except in CI (CI=true), where scripts/test.sh installs it with
// scripts/browser.sh. With -update it keeps the screenshot as
// testdata/publicity.png.
func TestChromiumScreenshot(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI (scripts/browser.sh installs it): %v", err)
		}
		t.Skip("chromium not installed; run scripts/browser.sh")
	}
	p := poStart(t)
	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size=1280,1600", "--screenshot="+shot, p.URL+"/portal/rounds/R2022-0002")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	colors, dark := poInk(img)
	if colors < 50 || dark < 5000 {
		t.Errorf("screenshot looks blank: %d colors, %d dark pixels", colors, dark)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "publicity.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// poInk counts the distinct colors of img and its dark pixels (text).
func poInk(img image.Image) (colors, dark int) {
	seen := map[uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[(cr>>8)<<16|(cg>>8)<<8|cb>>8] = true
			if cr+cg+cb < 3*0x5000 {
				dark++
			}
		}
	}
	return len(seen), dark
}
