// The web softphone: calls the bot over /call from the browser microphone, plays its replies,
// and shows the live transcript, intents and replies. No build step, no dependencies.
"use strict";

const RATE = 16000;           // the call's sample rate; the AudioContext runs at it too
const FRAME = RATE / 50;      // 20 ms of samples per binary message
const $ = (id) => document.getElementById(id);

const phone = {               // state, also read by the browser test
  ws: null, ctx: null, mic: null, node: null,
  pending: [], playing: new Set(), nextTime: 0,
  framesReceived: 0, samplesPlayed: 0, events: [],
};
window.softphone = phone;

function log(kind, text) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = text;
  $("log").appendChild(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function setStatus(text, live) {
  $("status").textContent = text;
  $("status").classList.toggle("live", !!live);
}

async function audioContext() {
  if (!phone.ctx) phone.ctx = new AudioContext({ sampleRate: RATE });
  if (phone.ctx.state === "suspended") await phone.ctx.resume();
  return phone.ctx;
}

function play(buffer) {
  // Reply audio arrives paced in real time; schedule each frame right after the previous one.
  const ctx = phone.ctx;
  const pcm = new Int16Array(buffer);
  const audio = ctx.createBuffer(1, pcm.length, RATE);
  const out = audio.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  const source = ctx.createBufferSource();
  source.buffer = audio;
  source.connect(ctx.destination);
  phone.nextTime = Math.max(phone.nextTime, ctx.currentTime + 0.06);
  source.start(phone.nextTime);
  phone.nextTime += audio.duration;
  phone.playing.add(source);
  source.onended = () => { phone.playing.delete(source); phone.samplesPlayed += pcm.length; };
}

function stopPlayback() {
  // Barge-in: the bot stopped talking, so drop what is still scheduled.
  for (const source of phone.playing) { try { source.stop(); } catch (e) { /* not started */ } }
  phone.playing.clear();
  phone.nextTime = 0;
}

function onEvent(event) {
  phone.events.push(event);
  switch (event.type) {
    case "started":
      setStatus(event.degraded ? "на связи (без распознавания речи)" : "на связи", true);
      break;
    case "state":
      setStatus({ greeting: "приветствие", listening: "слушает", thinking: "думает",
                  speaking: "говорит", transfer: "перевод на оператора", goodbye: "прощается",
                  ended: "разговор окончен" }[event.state] || event.state, true);
      break;
    case "transcript":
      if (event.final) { $("partial").textContent = ""; log("caller", event.text); }
      else $("partial").textContent = event.text;
      break;
    case "intent": {
      const score = event.score.toFixed(2);
      log("intent", `интент: ${event.intent ?? "—"} · ${score} · ${event.decision}`);
      break;
    }
    case "reply": log("bot", event.text); break;
    case "playback": if (event.status === "interrupted") stopPlayback(); break;
    case "barge_in": stopPlayback(); log("info", "вы перебили робота"); break;
    case "handoff": log("info", `перевод в очередь «${event.queue}» (${event.reason})`); break;
    case "error": log("error", `${event.code}: ${event.message}`); break;
    case "hangup": log("info", `звонок завершён: ${event.outcome}`); break;
  }
}

async function startMic(ws) {
  const ctx = await audioContext();
  phone.mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 },
  });
  await ctx.audioWorklet.addModule("/static/mic-worklet.js");
  const source = ctx.createMediaStreamSource(phone.mic);
  phone.node = new AudioWorkletNode(ctx, "mic-capture");
  phone.node.port.onmessage = ({ data }) => {
    let peak = 0;
    for (const s of data) { phone.pending.push(s); peak = Math.max(peak, Math.abs(s)); }
    $("level").style.setProperty("--l", `${Math.min(100, peak * 200)}%`);
    while (phone.pending.length >= FRAME) {
      const chunk = phone.pending.splice(0, FRAME);
      const pcm = new Int16Array(FRAME);
      for (let i = 0; i < FRAME; i++) pcm[i] = Math.max(-1, Math.min(1, chunk[i])) * 32767;
      if (ws.readyState === WebSocket.OPEN) ws.send(pcm.buffer);
    }
  };
  source.connect(phone.node);  // not to the speakers: the caller must not hear themselves
}

async function call() {
  if (phone.ws) return phone.ws;
  await audioContext();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/call`);
  ws.binaryType = "arraybuffer";
  phone.ws = ws;
  setStatus("соединение…");
  $("call").disabled = true;
  $("hangup").disabled = false;
  const opened = new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  ws.onmessage = ({ data }) => {
    if (typeof data === "string") onEvent(JSON.parse(data));
    else { phone.framesReceived++; play(data); }
  };
  ws.onclose = () => cleanup();
  await opened;
  ws.send(JSON.stringify({ type: "start", caller_id: "softphone", sample_rate: RATE,
                           format: "pcm_s16le" }));
  if ($("use-mic").checked) {
    try { await startMic(ws); }
    catch (err) { log("error", `микрофон недоступен: ${err.message}; можно писать вопросы`); }
  }
  return ws;
}

function cleanup() {
  if (phone.mic) phone.mic.getTracks().forEach((t) => t.stop());
  if (phone.node) phone.node.disconnect();
  phone.ws = phone.mic = phone.node = null;
  phone.pending = [];
  $("call").disabled = false;
  $("hangup").disabled = true;
  setStatus("не на связи");
}

function hangup() {
  if (!phone.ws) return;
  phone.ws.send(JSON.stringify({ type: "hangup" }));
  stopPlayback();
}

$("call").onclick = () => call().catch((err) => log("error", err.message || "нет соединения"));
$("hangup").onclick = hangup;
$("ask").onsubmit = async (e) => {
  e.preventDefault();
  const text = $("question").value.trim();
  if (!text) return;
  $("question").value = "";
  const ws = await call();
  stopPlayback();
  ws.send(JSON.stringify({ type: "text", text }));
};
for (const key of "123456789*0#") {
  const b = document.createElement("button");
  b.textContent = key;
  b.type = "button";
  b.onclick = async () => (await call()).send(JSON.stringify({ type: "dtmf", digit: key }));
  $("keypad").appendChild(b);
}
