// Opt-in attention for new requests: a browser notification and a short sound. Both are off
// until the approver turns them on (the choice is kept in this browser's localStorage).
import { safeText } from './text.js';

const KEY = 'toolgate.attention';

export function loadAttention() {
  try {
    return { notify: false, sound: false, ...JSON.parse(localStorage.getItem(KEY) ?? '{}') };
  } catch {
    return { notify: false, sound: false };
  }
}

export function saveAttention(settings) {
  localStorage.setItem(KEY, JSON.stringify(settings));
}

/** Asks for permission; resolves to whether notifications may be shown. */
export async function enableNotifications() {
  if (!('Notification' in window)) return false;
  if (Notification.permission === 'granted') return true;
  return (await Notification.requestPermission()) === 'granted';
}

let audio = null;
function beep() {
  audio ??= new AudioContext();
  const osc = audio.createOscillator();
  const gain = audio.createGain();
  osc.frequency.value = 880;
  gain.gain.setValueAtTime(0.15, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
  osc.connect(gain).connect(audio.destination);
  osc.start();
  osc.stop(audio.currentTime + 0.4);
}

/** Tells the approver a request arrived, as they chose. Returns what it did, for the page to show. */
export function announce(approval, settings) {
  const done = [];
  if (settings.notify && 'Notification' in window && Notification.permission === 'granted') {
    const n = new Notification(`toolgate: ${approval.sensitivity} ${safeText(approval.tool)}`, {
      body: `from ${safeText(approval.requester.id)} (${approval.requester.role})`,
      tag: approval.id,
    });
    n.onclick = () => {
      window.focus();
      location.hash = `/r/${approval.id}`;
    };
    done.push('notification');
  }
  if (settings.sound) {
    try {
      beep();
      done.push('sound');
    } catch {
      /* no audio output */
    }
  }
  return done;
}
