import { h } from 'preact';
import htm from 'htm';

/** Tagged templates for Preact: values are always children or attribute values, never parsed as markup. */
export const html = htm.bind(h);
