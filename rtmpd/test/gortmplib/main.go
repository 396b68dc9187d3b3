// read-tracks plays a stream with MediaMTX's RTMP library (gortmplib) and
// prints the codecs of the tracks its Reader finds, one per line, as
// "video H264" or "audio MPEG1Audio". The Reader stops looking for tracks
// once the media it has read spans two seconds, so a joining player whose
// first messages jump in time loses the tracks it had not seen yet.
//
// Usage: read-tracks rtmp://host:port/app#key
package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: read-tracks rtmp://host:port/app#key")
		os.Exit(2)
	}
	if err := readTracks(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "read-tracks:", err)
		os.Exit(1)
	}
}

func readTracks(address string) error {
	u, err := url.Parse(address)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &gortmplib.Client{URL: u, Publish: false}
	if err := client.Initialize(ctx); err != nil {
		return err
	}
	defer client.Close()
	if err := client.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	reader := &gortmplib.Reader{Conn: client}
	if err := reader.Initialize(); err != nil {
		return err
	}
	for _, track := range reader.Tracks() {
		name := fmt.Sprintf("%T", track.Codec)
		name = name[strings.LastIndex(name, ".")+1:]
		kind := "audio"
		if track.Codec.IsVideo() {
			kind = "video"
		}
		fmt.Println(kind, name)
	}
	return nil
}
