"""Offline music making for the builtin composer: text -> style -> MIDI -> audio.

- :mod:`.text_to_style` reads any description into a :class:`~.text_to_style.Style`.
- :mod:`.harmony`, :mod:`.melody`, :mod:`.accompaniment`, :mod:`.drums` and
  :mod:`.arranger` compose it into a four-part ``pretty_midi.PrettyMIDI``.
- :mod:`.soundfont` reads a SoundFont 2 file; :mod:`.render` plays MIDI with it in numpy.

Nothing here needs model weights, a GPU, a network or a system library.
"""
