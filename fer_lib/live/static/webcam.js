// The browser half of fer_lib.live.widget.WebcamWidget (an anywidget ES module).
//
// Camera (getUserMedia) or a video file -> the video plays at its own rate; its current frame, scaled down to
// frame_width (the kernel searches a smaller copy anyway), as grey pixels or a JPEG (frame_format), sent to the
// kernel as a custom message with one binary buffer -> the kernel's reply (boxes in the camera's pixels,
// labels, probabilities) drawn over the video. Event driven on both sides: a frame leaves when fewer than
// max_in_flight are unanswered (and not before 1/max_fps has passed). Two in flight let the browser grab and
// encode the next frame while the kernel works on the last, without ever queueing more than one frame at the
// kernel.

const NO_REPLY_MS = 10000;
const STATS_EVERY_MS = 250;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

function cameraMessage(error) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "This page cannot use a camera (it needs https or localhost, and some notebook views, such as VS Code's, block it).";
  }
  const reasons = {
    NotAllowedError: "Camera permission was refused.",
    SecurityError: "Camera permission was refused.",
    NotFoundError: "No camera was found.",
    OverconstrainedError: "No camera was found.",
    NotReadableError: "The camera is busy in another application.",
  };
  return reasons[error.name] || `The camera could not start (${error.name}: ${error.message}).`;
}

// Mean of the last n values: the stage times shown (and read by the tests) without one frame's jitter.
class RunningMean {
  constructor(n = 30) { this.n = n; this.values = []; }
  add(value) {
    this.values.push(value);
    if (this.values.length > this.n) this.values.shift();
    return this.values.reduce((a, b) => a + b, 0) / this.values.length;
  }
}

// Sliding-window rate of events per second: analyses drawn, video frames shown.
class FpsMeter {
  constructor(windowMs = 2000) { this.windowMs = windowMs; this.times = []; }
  tick(now) {
    this.times.push(now);
    while (this.times.length > 2 && now - this.times[0] > this.windowMs) this.times.shift();
    const span = now - this.times[0];
    return span > 0 ? ((this.times.length - 1) * 1000) / span : 0;
  }
}

// "auto": grey pixels where the kernel is on this machine, a JPEG (a fifth of the bytes) across a network.
function sendsGray(format) {
  return format === "gray" || (format === "auto" && ["localhost", "127.0.0.1", "[::1]"].includes(location.hostname));
}

// The canvas as grey pixels, one byte each, row by row, weighted as OpenCV's RGB-to-grey conversion.
function grayPixels(context, width, height) {
  const rgba = context.getImageData(0, 0, width, height).data;
  const gray = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
    gray[i] = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
  }
  return gray;
}

function drawDetections(canvas, video, reply, classes) {
  const width = video.clientWidth, height = video.clientHeight;
  const ratio = window.devicePixelRatio || 1;
  // resizing a canvas reallocates it: only when the video's size changed
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const sx = width / reply.width, sy = height / reply.height;
  const font = 13, barWidth = 70, rowHeight = font + 3;
  ctx.font = `${font}px sans-serif`;
  ctx.textBaseline = "top";
  for (const d of reply.detections) {
    const [x, y, w, h] = [d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy];
    ctx.strokeStyle = "red";
    ctx.lineWidth = 3;
    ctx.strokeRect(x, y, w, h);
    const text = `${d.label} ${Math.round(100 * d.probabilities[d.label])}%`;
    const top = y >= rowHeight + 2 ? y - rowHeight - 2 : y + h;
    ctx.fillStyle = "red";
    ctx.fillRect(x, top, ctx.measureText(text).width + 8, rowHeight + 2);
    ctx.fillStyle = "white";
    ctx.fillText(text, x + 4, top + 2);
    // One bar per class beside the box (inside the frame where it fits).
    const left = x + w + 4 + barWidth + 50 <= width ? x + w + 4 : Math.max(0, x - barWidth - 54);
    classes.forEach((name, i) => {
      const p = d.probabilities[name] || 0, row = y + i * rowHeight;
      ctx.fillStyle = "rgba(0, 0, 0, 0.55)";
      ctx.fillRect(left, row, barWidth + 50, rowHeight - 1);
      ctx.fillStyle = name === d.label ? "red" : "#f5a623";
      ctx.fillRect(left + 48, row + 2, barWidth * p, rowHeight - 5);
      ctx.fillStyle = "white";
      ctx.fillText(name, left + 2, row + 1);
    });
  }
  canvas.dataset.boxes = String(reply.detections.length);
  canvas.dataset.labels = reply.detections.map((d) => d.label).join(",");
}

function render({ model, el: root }) {
  const view = Math.random().toString(36).slice(2);
  const box = el("div", "fer-webcam");
  const bar = el("div", "fer-webcam-bar");
  const start = el("button", "fer-webcam-start", "Start camera");
  const stop = el("button", "fer-webcam-stop", "Stop");
  const fileButton = el("button", "fer-webcam-file", "Play a video file…");
  const fileInput = el("input", "fer-webcam-file-input");
  fileInput.type = "file";
  fileInput.accept = "video/*";
  fileInput.hidden = true;
  const stats = el("span", "fer-webcam-stats");
  const message = el("div", "fer-webcam-message");
  const stage = el("div", "fer-webcam-stage");
  const video = el("video", "fer-webcam-video");
  video.muted = true;
  video.playsInline = true;
  const overlay = el("canvas", "fer-webcam-overlay");
  const grab = document.createElement("canvas");
  stop.disabled = true;
  bar.append(start, stop, fileButton, fileInput, stats);
  stage.append(video, overlay);
  box.append(bar, message, stage);
  root.append(box);

  let running = false, stream = null, nextId = 0, lastSent = 0, lastDrawn = -1, timer = null;
  const inFlight = new Map();  // id -> { sent, encoded, watchdog }: frames sent and not answered yet
  let meter = new FpsMeter(), lastFpsSync = 0, lastStats = 0, means = {};
  // analyses drawn since the start, the most frames ever awaiting a reply, and the video's own rate as shown
  let labelled = 0, maxInFlight = 0, videoMeter = new FpsMeter(), videoFps = 0, videoCallback = null;

  // only on a change: each one has the page's layout redone
  function say(text) {
    if (message.textContent === text && message.hidden === !text) return;
    message.textContent = text;
    message.hidden = !text;
  }
  say("");

  function countVideoFrame() {
    videoFps = videoMeter.tick(performance.now());
    videoCallback = video.requestVideoFrameCallback(countVideoFrame);
  }

  function forget(id) {
    const frame = inFlight.get(id);
    if (frame) clearTimeout(frame.watchdog);
    inFlight.delete(id);
    return frame;
  }

  // as many frames as max_in_flight await a reply: the next waits for one of them
  function full() { return inFlight.size >= Math.max(1, model.get("max_in_flight")); }

  function schedule() {
    if (!running || timer || full()) return;
    const wait = Math.max(0, lastSent + 1000 / model.get("max_fps") - performance.now());
    timer = setTimeout(() => { timer = null; sendFrame(); }, wait);
  }

  function sendFrame() {
    if (!running || full()) return;
    if (video.readyState < 2 || !video.videoWidth) {
      timer = setTimeout(() => { timer = null; sendFrame(); }, 50);
      return;
    }
    const width = video.videoWidth, height = video.videoHeight;
    const scale = Math.min(1, (model.get("frame_width") || width) / width);
    grab.width = Math.max(1, Math.round(width * scale));
    grab.height = Math.max(1, Math.round(height * scale));
    const context = grab.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0, grab.width, grab.height);
    const id = nextId++;
    const frame = { sent: performance.now(), encoded: 0, watchdog: null };
    lastSent = frame.sent;
    frame.watchdog = setTimeout(() => {
      say("No reply from the kernel: is it running? (A static page has no kernel; open the notebook in Jupyter or Colab.)");
      forget(id);
      schedule();
    }, NO_REPLY_MS);
    inFlight.set(id, frame);
    maxInFlight = Math.max(maxInFlight, inFlight.size);
    // width and height: the camera's own size, in whose pixels the kernel answers
    const message = { type: "frame", id, view, width, height };
    if (sendsGray(model.get("frame_format"))) {
      const pixels = grayPixels(context, grab.width, grab.height);
      frame.encoded = performance.now();
      model.send({ ...message, shape: [grab.height, grab.width] }, undefined, [pixels.buffer]);
    } else {
      grab.toBlob(async (blob) => {
        if (!running || !inFlight.has(id)) return;
        if (!blob) { forget(id); schedule(); return; }  // the encoder failed: try the next frame
        const buffer = await blob.arrayBuffer();
        frame.encoded = performance.now();
        model.send(message, undefined, [buffer]);
      }, "image/jpeg", model.get("jpeg_quality"));
    }
    schedule();  // a second frame may leave while this one is in flight
  }

  function onReply(msg) {
    if (msg.type !== "result" || msg.view !== view || !inFlight.has(msg.id)) return;
    const now = performance.now();
    const frame = forget(msg.id);
    const roundTrip = now - frame.sent;
    if (msg.error) {
      say(`The kernel could not process a frame: ${msg.error}`);
    } else if (running && msg.id > lastDrawn) {  // an older frame's late reply is not drawn over a newer one
      lastDrawn = msg.id;
      labelled++;
      say("");
      drawDetections(overlay, video, msg, model.get("classes"));
    }
    const drawMs = performance.now() - now;
    const fps = meter.tick(now);
    const kernelMs = msg.kernel_ms || 0, encodeMs = frame.encoded - frame.sent;
    const times = {
      roundTrip: means.roundTrip.add(roundTrip),
      encodeMs: means.encodeMs.add(encodeMs),
      kernelMs: means.kernelMs.add(kernelMs),
      transportMs: means.transportMs.add(roundTrip - encodeMs - kernelMs),
      drawMs: means.drawMs.add(drawMs),
    };
    if (now - lastStats > STATS_EVERY_MS) {  // the page's layout is redone on each change: a few times a second
      lastStats = now;
      stats.textContent = `${fps.toFixed(1)} fps · round trip ${times.roundTrip.toFixed(0)} ms · video ${videoFps.toFixed(0)} fps`;
      stats.title = `frames analysed and drawn per second; per frame, mean of the last 30: encoding `
        + `${times.encodeMs.toFixed(1)} ms, kernel ${times.kernelMs.toFixed(1)} ms, transport and waiting `
        + `${times.transportMs.toFixed(1)} ms, drawing ${times.drawMs.toFixed(1)} ms; the video plays at `
        + `${videoFps.toFixed(1)} frames per second on its own; kernel frames ${msg.frames}`;
      Object.assign(stats.dataset, {  // at: this page's clock (ms) then, for exact rates between two readings
        at: now.toFixed(1), fps: fps.toFixed(2), labelled: String(labelled), videoFps: videoFps.toFixed(2),
        frames: String(msg.frames), inFlight: String(inFlight.size), maxInFlight: String(maxInFlight),
      });
      for (const [name, value] of Object.entries(times)) stats.dataset[name] = value.toFixed(1);
    }
    if (now - lastFpsSync > 1000) {
      lastFpsSync = now;
      model.set("fps", fps);
      model.save_changes();
    }
    schedule();
  }

  function begin() {
    running = true;
    meter = new FpsMeter();
    means = Object.fromEntries(["roundTrip", "encodeMs", "kernelMs", "transportMs", "drawMs"].map((k) => [k, new RunningMean()]));
    lastDrawn = -1;
    labelled = maxInFlight = 0;
    videoMeter = new FpsMeter();
    if (video.requestVideoFrameCallback) videoCallback = video.requestVideoFrameCallback(countVideoFrame);
    start.disabled = true;
    stop.disabled = false;
    if (!model.get("running")) { model.set("running", true); model.save_changes(); }
    schedule();
  }

  async function startCamera() {
    if (running) return;
    try {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error("no mediaDevices");
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: model.get("width") }, height: { ideal: model.get("height") } },
        audio: false,
      });
    } catch (error) {
      say(`${cameraMessage(error)} You can play a video file instead.`);
      box.dataset.camera = "unavailable";
      if (model.get("running")) { model.set("running", false); model.save_changes(); }
      return;
    }
    box.dataset.camera = "on";
    video.srcObject = stream;
    await video.play();
    say("");
    begin();
  }

  async function playFile(file) {
    end();
    video.srcObject = null;
    video.src = URL.createObjectURL(file);
    video.loop = true;
    await video.play();
    say("");
    begin();
  }

  function end() {
    running = false;
    clearTimeout(timer);
    timer = null;
    for (const id of [...inFlight.keys()]) forget(id);
    if (videoCallback !== null) video.cancelVideoFrameCallback(videoCallback);
    videoCallback = null;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.pause();
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    overlay.dataset.boxes = "0";
    start.disabled = false;
    stop.disabled = true;
    if (model.get("running")) { model.set("running", false); model.save_changes(); }
  }

  start.addEventListener("click", startCamera);
  stop.addEventListener("click", end);
  fileButton.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => { if (fileInput.files.length) playFile(fileInput.files[0]); });
  const onCustom = (msg) => onReply(msg);
  const onRunning = () => { if (model.get("running") && !running) startCamera(); else if (!model.get("running") && running) end(); };
  model.on("msg:custom", onCustom);
  model.on("change:running", onRunning);
  if (model.get("running")) startCamera();
  return () => {
    end();
    model.off("msg:custom", onCustom);
    model.off("change:running", onRunning);
  };
}

export default { render };
