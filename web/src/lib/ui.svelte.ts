// What is open: the room of a Knoten, an Antrag in the Webrat, the account dialog, the tab on
// narrow screens, and the tie-a-Knoten form at a map point.

export type MobileTab = 'map' | 'webrat' | 'stuebchen';

export interface TieAt {
  lat: number;
  lng: number;
  /** Pixel position in the map (where the form appears). */
  x: number;
  y: number;
}

class Ui {
  room = $state<string | null>(null);
  antrag = $state<string | null>(null);
  kontoOpen = $state(false);
  mobileTab = $state<MobileTab>('map');
  tieAt = $state<TieAt | null>(null);
  /** A short note over the map (e.g. "register to tie a Knoten"). */
  toast = $state<string | null>(null);
  /** Set by the map once it exists. */
  flyTo: (lat: number, lng: number, zoom?: number) => void = () => {};
  /** The map centre, for registering a home and tying from the keyboard. */
  centre = $state<{ lat: number; lng: number }>({ lat: 50.9803, lng: 11.3294 });
  #toastTimer: ReturnType<typeof setTimeout> | null = null;

  openRoom(id: string) {
    this.room = id;
    this.mobileTab = 'stuebchen';
  }

  openAntrag(id: string | null) {
    this.antrag = id;
    if (id) this.mobileTab = 'webrat';
  }

  showToast(text: string) {
    this.toast = text;
    if (this.#toastTimer) clearTimeout(this.#toastTimer);
    this.#toastTimer = setTimeout(() => (this.toast = null), 4000);
  }
}

export const ui = new Ui();
