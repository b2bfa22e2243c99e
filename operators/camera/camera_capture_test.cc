// camera.capture without a camera: MJPG .avi files written with cv::VideoWriter into a temp
// folder are read back (count, sizes, event times from the file, resize, fps limit, loop);
// a missing file, a corrupt file, a truncated file and a missing device fail at open with a
// clear message; reconnect waits for a missing device instead. An HTTP MJPEG stream (the
// kind IP cameras serve) that drops is reported, then reopened or ended, as configured.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <string>
#include <thread>
#include <vector>

#include "operators/camera/synthetic_scene.h"
#include "operators/camera/video_source.h"
#include "operators/image/frame.h"
#include "runtime/testing/harness.h"

namespace edgeflow {
namespace {

namespace fs = std::filesystem;

class CameraCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "edgeflow-camera-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // An MJPG AVI of `frames` synthetic frames at `fps`.
  std::string write_video(const std::string& name, int frames, double fps = 10,
                          cv::Size size = {320, 240}) {
    std::string path = (fs::path(dir_) / name).string();
    cv::VideoWriter w(path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, size);
    EXPECT_TRUE(w.isOpened());
    SyntheticScene::Config c;
    c.width = size.width;
    c.height = size.height;
    c.object_size = 30;
    SyntheticScene scene(c);
    for (int i = 0; i < frames; ++i) w.write(scene.render(i));
    w.release();
    return path;
  }

  std::string write_bytes(const std::string& name, const std::string& bytes) {
    std::string path = (fs::path(dir_) / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }

  std::string dir_;
};

std::string open_error(const std::string& options) {
  OperatorHarness h("camera.capture", options);
  try {
    h.open();
  } catch (const OperatorError& e) {
    return e.what();
  }
  return "";
}

TEST_F(CameraCaptureTest, ReadsEveryFrameWithFileTimes) {
  std::string path = write_video("a.avi", 25);
  OperatorHarness h("camera.capture", "{device: '" + path + "', speed: 0}");
  h.run_source(1000);
  const auto& out = h.output();
  ASSERT_EQ(out.size(), 25u);
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i]->event_time_us - out[0]->event_time_us, static_cast<int64_t>(i) * 100'000)
        << i;
    EXPECT_EQ(*find_field(out[i]->fields, "frame"), Value(static_cast<int64_t>(i)));
    const cv::Mat* px = native_frame(out[i]->blob);
    ASSERT_NE(px, nullptr);
    EXPECT_EQ(px->size(), cv::Size(320, 240));
  }
  EXPECT_TRUE(h.errors().empty());
}

TEST_F(CameraCaptureTest, PacesAFileAtItsOwnFrameRate) {
  std::string path = write_video("a.avi", 5);
  OperatorHarness h("camera.capture", "{device: '" + path + "'}");
  int64_t start = h.now_us();
  h.run_source(1000);
  ASSERT_EQ(h.output().size(), 5u);
  EXPECT_EQ(h.now_us() - start, 400'000);  // the fake clock jumped to each frame's time
}

TEST_F(CameraCaptureTest, ResizesKeepingTheAspectAndLimitsFps) {
  std::string path = write_video("a.avi", 20);
  OperatorHarness h("camera.capture", "{device: '" + path + "', speed: 0, width: 160, fps: 5}");
  h.run_source(1000);
  ASSERT_EQ(h.output().size(), 10u);  // 10 fps file, at most 5 per second sent on
  EXPECT_EQ(native_frame(h.output()[0]->blob)->size(), cv::Size(160, 120));
  EXPECT_EQ(h.output()[1]->event_time_us - h.output()[0]->event_time_us, 200'000);
}

TEST_F(CameraCaptureTest, LoopsAFileWithRisingEventTimes) {
  std::string path = write_video("a.avi", 6);
  OperatorHarness h("camera.capture", "{device: '" + path + "', speed: 0, loop: true, count: 15}");
  h.run_source(1000);
  const auto& out = h.output();
  ASSERT_EQ(out.size(), 15u);
  for (size_t i = 1; i < out.size(); ++i)
    EXPECT_EQ(out[i]->event_time_us - out[i - 1]->event_time_us, 100'000) << i;
}

TEST_F(CameraCaptureTest, RelativePathsAreRelativeToThePipelineFolder) {
  // The harness has no pipeline folder: a relative path is taken as is, so a missing one
  // says so by name.
  std::string e = open_error("{device: no-such-video.avi}");
  EXPECT_NE(e.find("cannot open video file 'no-such-video.avi'"), std::string::npos) << e;
  EXPECT_NE(e.find("No such file"), std::string::npos) << e;
}

TEST_F(CameraCaptureTest, CorruptAndTruncatedFilesFailAtOpen) {
  std::string junk = write_bytes("junk.avi", std::string(4096, '\x5a'));
  std::string e = open_error("{device: '" + junk + "'}");
  EXPECT_NE(e.find("junk.avi"), std::string::npos) << e;
  EXPECT_TRUE(e.find("not a video OpenCV can read") != std::string::npos ||
              e.find("cannot be decoded") != std::string::npos)
      << e;

  // A real AVI cut after its header: the container parses, the frames do not.
  std::string good = write_video("good.avi", 10);
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string cut = write_bytes("cut.avi", bytes.substr(0, 300));
  e = open_error("{device: '" + cut + "'}");
  EXPECT_NE(e.find("cut.avi"), std::string::npos) << e;
  EXPECT_FALSE(e.empty());

  e = open_error("{device: '" + dir_ + "'}");
  EXPECT_NE(e.find("is a directory"), std::string::npos) << e;
}

TEST_F(CameraCaptureTest, MissingCameraFailsClearly) {
  std::string e = open_error("{device: /dev/video99}");
  EXPECT_NE(e.find("no camera at /dev/video99"), std::string::npos) << e;
  EXPECT_NE(e.find("reconnect: true"), std::string::npos) << e;
  e = open_error("{device: '97'}");
  EXPECT_NE(e.find("no camera at /dev/video97"), std::string::npos) << e;
}

TEST_F(CameraCaptureTest, ReconnectWaitsForAMissingCamera) {
  OperatorHarness h("camera.capture",
                    "{device: /dev/video99, reconnect: true, "
                    "reconnect_delay: 5s}");
  h.open();  // no throw
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_NE(h.errors()[0].find("retrying every 5s"), std::string::npos) << h.errors()[0];
  SourceStep s = h.step();
  ASSERT_EQ(s.kind, SourceStep::kWaitUntil);
  EXPECT_EQ(s.wake_us - h.now_us(), 5'000'000);
  for (int i = 0; i < 40; ++i) {  // 40 more attempts: one more report at the 30th
    h.set_clock(h.step().wake_us);
  }
  EXPECT_EQ(h.errors().size(), 2u);
  EXPECT_TRUE(h.output().empty());
}

TEST_F(CameraCaptureTest, OptionsThatDoNotFitTheSourceAreRefused) {
  std::string p =
      OperatorHarness::option_problems("camera.capture", "{device: /dev/video0, loop: true}");
  EXPECT_NE(p.find("loop"), std::string::npos) << p;
  p = OperatorHarness::option_problems("camera.capture", "{device: x.avi, reconnect: true}");
  EXPECT_NE(p.find("reconnect"), std::string::npos) << p;
  p = OperatorHarness::option_problems("camera.capture", "{device: '0', time: file}");
  EXPECT_NE(p.find("time"), std::string::npos) << p;
  p = OperatorHarness::option_problems("camera.capture", "{}");
  EXPECT_NE(p.find("device"), std::string::npos) << p;
}

// An HTTP camera on loopback serving multipart MJPEG ("multipart/x-mixed-replace", as IP
// cameras do): each of `connections` clients gets `frames` frames, then the connection
// drops. Every wait is bounded, so a failing test never hangs on it.
class MjpegServer {
 public:
  MjpegServer(int connections, int frames) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 4) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "cannot listen on loopback";
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, connections, frames] { serve(connections, frames); });
  }
  ~MjpegServer() {
    thread_.join();
    ::close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/stream.mjpg"; }

 private:
  void serve(int connections, int frames) {
    for (int c = 0; c < connections; ++c) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) <= 0) return;
      int s = ::accept(fd_, nullptr, nullptr);
      if (s < 0) return;
      char request[4096];
      (void)!::read(s, request, sizeof request);
      send(s, "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=frame\r\n\r\n");
      for (int i = 0; i < frames; ++i) {
        cv::Mat m(120, 160, CV_8UC3, cv::Scalar(20 * i, 100, 50));
        std::vector<uchar> jpeg;
        cv::imencode(".jpg", m, jpeg);
        send(s, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                    std::to_string(jpeg.size()) + "\r\n\r\n");
        send(s, std::string(jpeg.begin(), jpeg.end()) + "\r\n");
      }
      ::close(s);
    }
  }
  static void send(int s, const std::string& bytes) {
    for (size_t done = 0; done < bytes.size();) {
      ssize_t n = ::write(s, bytes.data() + done, bytes.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(CameraCaptureStream, DropIsReportedAndTheStreamReopened) {
  MjpegServer server(2, 6);
  OperatorHarness h("camera.capture", "{device: '" + server.url() +
                                          "', reconnect: true, reconnect_delay: 1s, count: 12, "
                                          "timeout: 5s}");
  h.run_source(1000);
  ASSERT_EQ(h.output().size(), 12u);
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_NE(h.errors()[0].find("stopped delivering frames; reopening every 1s"), std::string::npos)
      << h.errors()[0];
  EXPECT_NE(h.errors()[0].find("stream http://127.0.0.1:"), std::string::npos) << h.errors()[0];
  EXPECT_EQ(native_frame(h.output()[11]->blob)->size(), cv::Size(160, 120));
  for (size_t i = 1; i < h.output().size(); ++i)
    EXPECT_GT(h.output()[i]->event_time_us, h.output()[i - 1]->event_time_us);
}

TEST(CameraCaptureStream, DropEndsTheSourceWithoutReconnect) {
  MjpegServer server(1, 5);
  OperatorHarness h("camera.capture", "{device: '" + server.url() + "', timeout: 5s}");
  h.run_source(1000);
  EXPECT_EQ(h.output().size(), 5u);
  ASSERT_EQ(h.errors().size(), 1u);
  EXPECT_NE(h.errors()[0].find("the source ends (set reconnect: true"), std::string::npos)
      << h.errors()[0];
  EXPECT_EQ(h.step().kind, SourceStep::kDone);
}

TEST(VideoSource, ClassifiesAndRedacts) {
  EXPECT_EQ(VideoSource::classify("0"), VideoSource::Kind::kDevice);
  EXPECT_EQ(VideoSource::classify("/dev/video2"), VideoSource::Kind::kDevice);
  EXPECT_EQ(VideoSource::classify("rtsp://cam.local/live"), VideoSource::Kind::kStream);
  EXPECT_EQ(VideoSource::classify("clips/door.mp4"), VideoSource::Kind::kFile);
  EXPECT_EQ(VideoSource::redact("rtsp://admin:s3cret@10.0.0.5:554/live"),
            "rtsp://admin:***@10.0.0.5:554/live");
  EXPECT_EQ(VideoSource::redact("rtsp://10.0.0.5:554/live"), "rtsp://10.0.0.5:554/live");
  // An '@' in the password: user info ends at the last '@' before the path.
  EXPECT_EQ(VideoSource::redact("rtsp://admin:p@ss@cam/live"), "rtsp://admin:***@cam/live");
}

TEST(VideoSource, StreamThatCannotConnectFailsWithinItsTimeout) {
  // Port 1 on loopback refuses at once: the message names the stream, without the password.
  VideoSource::Config c;
  c.device = "rtsp://user:pw@127.0.0.1:1/none";
  c.timeout_ms = 2000;
  VideoSource s(c);
  std::string why;
  EXPECT_FALSE(s.open(why));
  EXPECT_NE(why.find("rtsp://user:***@127.0.0.1:1/none"), std::string::npos) << why;
  EXPECT_EQ(why.find("pw"), std::string::npos) << why;
}

}  // namespace
}  // namespace edgeflow
