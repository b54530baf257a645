// The ⌘K / Ctrl+K search palette over guides and operations: a modal
// dialog with a combobox and a listbox, keyboard only (↑ ↓ move, Enter
// opens, Esc closes and gives focus back). The MiniSearch index is built at
// install and loaded once; fuzzy prefix search, results grouped by kind.
// Each search's time (query and render) is kept on the listbox as
// `data-ms`, which `npm run bench` reads (test/bench/portal-search.ts).
import MiniSearch, { type SearchResult } from "minisearch";
import { queryOptions, type SearchDoc, searchOptions } from "./search-options.js";

let index: Promise<MiniSearch<SearchDoc>> | undefined;
const loadIndex = () => {
  index ??= fetch("/developer/assets/search-index.json")
    .then((r) => r.text())
    .then((json) => MiniSearch.loadJSON<SearchDoc>(json, searchOptions));
  return index;
};

const kinds = ["Operation", "Guide"] as const;
const kindTitles = { Operation: "Operations", Guide: "Guides" } as const;

export function setUpPalette(): void {
  const dialog = document.getElementById("palette") as HTMLDialogElement | null;
  const input = document.getElementById("palette-input") as HTMLInputElement | null;
  const list = document.getElementById("palette-results");
  const opener = document.getElementById("search-open");
  if (!dialog || !input || !list) return;
  let options: HTMLElement[] = [];
  let active = -1;
  let returnFocus: HTMLElement | null = null;
  let loaded: MiniSearch<SearchDoc> | undefined;

  const setActive = (i: number) => {
    options[active]?.setAttribute("aria-selected", "false");
    active = options.length === 0 ? -1 : (i + options.length) % options.length;
    const option = options[active];
    if (option) {
      option.setAttribute("aria-selected", "true");
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  };

  const render = (results: SearchResult[]) => {
    list.replaceChildren();
    options = [];
    if (results.length === 0) {
      const empty = document.createElement("p");
      empty.className = "palette-empty";
      empty.textContent = input.value.trim() ? "Nothing found." : "Type to search guides and operations.";
      list.append(empty);
    }
    for (const kind of kinds) {
      const ofKind = results.filter((r) => r.kind === kind);
      if (ofKind.length === 0) continue;
      const group = document.createElement("div");
      group.setAttribute("role", "group");
      const title = document.createElement("div");
      title.className = "palette-group";
      title.id = `palette-group-${kind}`;
      title.textContent = kindTitles[kind];
      title.setAttribute("role", "presentation");
      group.setAttribute("aria-labelledby", title.id);
      group.append(title);
      for (const r of ofKind) {
        const option = document.createElement("div");
        option.setAttribute("role", "option");
        option.id = `palette-option-${options.length}`;
        option.setAttribute("aria-selected", "false");
        option.dataset.url = r.url as string;
        const name = document.createElement("span");
        name.className = "palette-title";
        name.textContent = r.title as string;
        const context = document.createElement("span");
        context.className = "palette-context";
        context.textContent = r.context as string;
        option.append(name, " ", context);
        option.addEventListener("click", () => location.assign(r.url as string));
        group.append(option);
        options.push(option);
      }
      list.append(group);
    }
    setActive(0);
  };

  const search = () => {
    if (!loaded) return;
    const started = performance.now();
    const query = input.value.trim();
    render(query ? loaded.search(query, queryOptions).slice(0, 24) : []);
    list.dataset.ms = (performance.now() - started).toFixed(2);
  };

  const open = async () => {
    // Focus goes back where it was on close; to the search button when it was nowhere.
    const before = document.activeElement as HTMLElement | null;
    returnFocus = before && before !== document.body ? before : opener;
    if (!dialog.open) dialog.showModal();
    input.focus();
    input.select();
    loaded = await loadIndex();
    list.dataset.ready = "true";
    search();
  };

  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
      event.preventDefault();
      void open();
    }
  });
  opener?.addEventListener("click", () => void open());
  input.addEventListener("input", search);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      event.preventDefault();
      setActive(active + 1);
    } else if (event.key === "ArrowUp") {
      event.preventDefault();
      setActive(active - 1);
    } else if (event.key === "Escape") {
      // Closed here: a search field would spend the first Esc on clearing itself.
      event.preventDefault();
      dialog.close();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const url = options[active]?.dataset.url;
      if (url) location.assign(url);
    }
  });
  dialog.addEventListener("close", () => returnFocus?.focus());
  // Load the index when the browser is idle, so the first keystroke is fast too.
  setTimeout(() => void loadIndex(), 300);
}
