"""A broad labelled AMD corpus with group metadata, for validation by unseen voices and languages.

Every recording is what an outbound call hears after the answer (8 kHz mono int16) and carries
its *groups*: ``voice`` (a recorded speaker, an espeak-ng voice or a flite/festival one),
``language``, ``kind`` (the shape of the answer) and ``impairment`` (the line effects applied,
``+``-joined).

Voices: Asterisk's recorded prompt packages from Debian (``asterisk-core-sounds-{en,fr,es,it,ru}-wav``:
Allison en/es, June fr, Carlo it, IvrvoiceRU ru; ``asterisk-prompt-fr-armelle``,
``asterisk-prompt-es-co``, ``asterisk-prompt-it-menardi-wav``) and espeak-ng in ten languages.
The voices are split once into ``train`` and ``test`` pools (:data:`SPLITS`): the test pool holds
whole voices *and whole languages* (Portuguese, Polish, Swedish, Russian) never used for
tuning. Tuning may only look at ``train`` (and group folds inside it).

A third pool, ``fresh``, is measured once, at the end, and never looked at before: other
synthesizers (``flite:VOICE``, flite's built-in English voices; ``festival:VOICE``, festival with
festvox voices in English, Russian, Finnish, Czech, Catalan and Italian) and espeak-ng in languages
neither other split speaks (Czech, Finnish, Hungarian, Turkish, Greek, Romanian, Danish). Its
babble comes from fresh voices only, and it alone has one more line effect: room reverb /
speakerphone (sox ``reverb``, tagged ``reverb``) on about a fifth of the items. (festvox-hi-nsk is
left out: its Hindi voice needs a ``hindi_phones`` file Debian does not ship.)

Kinds — people: ``h_word`` (one short word, often over babble), ``h_word_twice`` (the word twice),
``h_short_again`` (a short phrase, then "hello?" again after 1.5-3 s), ``h_business`` (a ~3-5 s
company greeting, then silence and "hello?"). Machines: ``m_long_beep`` (5-12 s greeting, beep),
``m_short_beep`` (2-4.5 s greeting, 0.2-1 s silence, beep), ``m_short_nobeep`` ("leave a message",
~1.5-2.5 s, no beep), ``m_name_jump`` (a recorded name up to 15 dB louder than the system prompt
that follows), ``m_pauses`` (0.4-0.9 s pauses inside the greeting), ``m_music`` (music before or
under the greeting), ``m_long_nobeep``.

Line effects: sox (µ-law, A-law, GSM round trips, band limits; reverb in ``fresh`` only) and numpy
(white/pink/brown noise and babble at 3-30 dB SNR, clipping, lost packets, gain drift).

``python -m tests.amd_broad OUTDIR --count N --split test|train|fresh`` writes ``*.wav`` and
``labels.csv`` (``file,label,first_utterance_end_s,...`` and the group columns), the format that
``callcenter bench amd-vs-app-amd --corpus DIR`` reads.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from tests.amd_corpus import (CACHE, FRAME, RATE, _active_frames, _espeak, _first_utterance, _normalise,
                               _read_wav, _trim)

SOUNDS = Path(os.environ.get("CALLCENTER_AMD_SOUNDS", "/usr/share/asterisk/sounds"))

# Recorded voices: name -> [(language, directory under SOUNDS, extension)].
RECORDED: dict[str, list[tuple[str, str, str]]] = {
    "allison": [("en", "en_US_f_Allison", "wav"), ("es", "es_MX_f_Allison", "wav")],
    "armelle": [("fr", "fr", "gsm")],
    "menardi": [("it", "it_IT_f_Menardi", "wav")],
    "june": [("fr", "fr_CA_f_June", "wav")],
    "carlo": [("it", "it_IT_m_Carlo", "wav")],
    "ivrru": [("ru", "ru_RU_f_IvrvoiceRU", "wav")],
    "esco": [("es", "es", "gsm")],
}

# espeak-ng voices: "lang+variant". Test languages pt, pl, sv, ru never appear in train.
_ES_TRAIN = [f"{lang}+{v}" for lang in ("en-us", "en-gb", "de", "fr-fr", "es", "it", "nl")
             for v in ("m1", "m3", "f2", "f3")]
_ES_TEST = [f"{lang}+{v}" for lang in ("en-gb-scotland", "en-029", "pt", "pl", "sv", "ru", "fr-be", "es-419")
            for v in ("m2", "m7", "f1", "f4")]

# Fresh espeak-ng languages: none of them occurs in train or test.
_ES_FRESH = [f"{lang}+{v}" for lang in ("cs", "fi", "hu", "tr", "el", "ro", "da")
             for v in ("m4", "m5", "m6", "f5")]
_ES_FRESH_SET = frozenset(_ES_FRESH)

# Other synthesizers (fresh only), named "ENGINE:VOICE": flite's built-in voices (English) and
# festival's festvox voices -> (language, the text encoding the voice reads).
FLITE = {"kal": "en", "kal16": "en", "awb": "en", "rms": "en", "slt": "en"}
FESTIVAL: dict[str, tuple[str, str]] = {
    "cmu_us_slt_arctic_hts": ("en", "latin-1"),   # festvox-us-slt-hts
    "kal_diphone": ("en", "latin-1"),             # festvox-kallpc16k
    "ked_diphone": ("en", "latin-1"),             # festvox-kdlpc16k
    "msu_ru_nsh_clunits": ("ru", "utf-8"),        # festvox-ru
    "suo_fi_lj_diphone": ("fi", "latin-1"),       # festvox-suopuhe-lj
    "hy_fi_mv_diphone": ("fi", "latin-1"),        # festvox-suopuhe-mv
    "czech_dita": ("cs", "iso-8859-2"),           # festvox-czech-dita
    "czech_machac": ("cs", "iso-8859-2"),         # festvox-czech-machac
    "upc_ca_ona_hts": ("ca", "latin-1"),          # festvox-ca-ona-hts
    "lp_diphone": ("it", "latin-1"),              # festvox-italp16k
    "pc_diphone": ("it", "latin-1"),              # festvox-itapc16k
}
FESTIVAL_VOICES = Path("/usr/share/festival/voices")

SPLITS = {
    "train": {"recorded": ["allison", "armelle", "menardi"], "espeak": _ES_TRAIN},
    "test": {"recorded": ["june", "carlo", "ivrru", "esco"], "espeak": _ES_TEST},
    # Measured once, at the end: other synthesizers, and languages no other split has.
    "fresh": {"recorded": [], "espeak": _ES_FRESH,
              "synth": [f"flite:{v}" for v in FLITE] + [f"festival:{v}" for v in FESTIVAL]},
}


def _lang_of(voice: str) -> str:
    if ":" in voice:
        engine, name = voice.split(":", 1)
        return FLITE[name] if engine == "flite" else FESTIVAL[name][0]
    base = voice.split("+")[0]
    return {"en-us": "en", "en-gb": "en", "en-gb-scotland": "en", "en-029": "en", "fr-fr": "fr",
            "fr-be": "fr", "es-419": "es"}.get(base, base)


# Texts per language: word (one short answer), short (a short phrase), business (a company's
# greeting), name (a personal name), prompt (a system prompt after a name), machine (greeting
# phrases), leave (a very short "leave a message").
TEXTS: dict[str, dict[str, list[str]]] = {
    "en": {"word": ["Hello?", "Yes?", "Hi.", "Yeah?", "Speaking."],
           "short": ["Hello, who is this?", "Yeah, hello?", "Hi, this is Tom."],
           "business": ["Good morning, Acme Insurance, this is Laura, how can I help you?",
                        "Thank you for calling Brown and Sons plumbing, Mike speaking.",
                        "Hello, city dental clinic, reception, how may I help?"],
           "name": ["Peter Miller", "Sarah", "Dr. Anna Lopez"],
           "prompt": ["is not available. Please leave a message after the tone.",
                      "cannot take your call right now. Record your message at the beep."],
           "machine": ["Hi, you have reached the Miller family.", "We can't come to the phone right now.",
                       "Please leave a message after the tone and we will call you back.",
                       "Sorry I missed your call.", "Leave your name and number, thanks."],
           "leave": ["Leave a message.", "Please leave a message."]},
    "de": {"word": ["Hallo?", "Ja?", "Ja, bitte?", "Müller."],
           "short": ["Hallo, wer ist da?", "Ja, hallo?", "Hier ist Klaus."],
           "business": ["Guten Tag, Firma Schmidt und Partner, Sie sprechen mit Frau Weber, was kann ich für Sie tun?",
                        "Autohaus Becker, guten Morgen, mein Name ist Jonas, wie kann ich helfen?"],
           "name": ["Thomas Wagner", "Petra"],
           "prompt": ["ist zurzeit nicht erreichbar. Bitte sprechen Sie nach dem Signalton."],
           "machine": ["Hallo, hier ist der Anrufbeantworter von Familie Krause.",
                       "Wir sind leider nicht zu Hause.", "Bitte hinterlassen Sie eine Nachricht nach dem Ton.",
                       "Wir rufen so bald wie möglich zurück."],
           "leave": ["Bitte Nachricht hinterlassen."]},
    "fr": {"word": ["Allô?", "Oui?", "Allô, oui?", "Bonjour."],
           "short": ["Allô, c'est qui?", "Oui, allô?", "C'est Marie."],
           "business": ["Bonjour, cabinet Dubois et associés, Claire à l'appareil, que puis-je faire pour vous?",
                        "Garage Martin, bonjour, je vous écoute, comment puis-je vous aider?"],
           "name": ["Jean Dupont", "Sophie"],
           "prompt": ["n'est pas disponible. Laissez un message après le bip sonore."],
           "machine": ["Bonjour, vous êtes bien chez Paul et Julie.", "Nous sommes absents pour le moment.",
                       "Laissez-nous un message après le bip, nous vous rappellerons.", "Merci de votre appel."],
           "leave": ["Laissez un message."]},
    "es": {"word": ["¿Hola?", "¿Sí?", "¿Diga?", "Bueno."],
           "short": ["¿Hola, quién habla?", "Sí, dígame.", "Soy Carmen."],
           "business": ["Buenos días, seguros La Estrella, le atiende Lucía, ¿en qué puedo ayudarle?",
                        "Clínica dental Sonrisa, buenas tardes, habla Pedro, ¿qué necesita?"],
           "name": ["Carlos García", "Marta"],
           "prompt": ["no está disponible. Por favor deje su mensaje después del tono."],
           "machine": ["Hola, has llamado a la casa de Ana y Luis.", "En este momento no podemos atenderte.",
                       "Deja tu mensaje después de la señal y te llamaremos.", "Gracias por llamar."],
           "leave": ["Deje su mensaje."]},
    "it": {"word": ["Pronto?", "Sì?", "Pronto, sì?", "Dica."],
           "short": ["Pronto, chi parla?", "Sì, pronto?", "Sono Marco."],
           "business": ["Buongiorno, studio legale Rossi, sono Giulia, come posso aiutarla?",
                        "Ferramenta Bianchi, buonasera, mi dica pure, in cosa posso esserle utile?"],
           "name": ["Luca Ferrari", "Chiara"],
           "prompt": ["non è raggiungibile. Lasciate un messaggio dopo il segnale acustico."],
           "machine": ["Ciao, avete chiamato casa Conti.", "Al momento non possiamo rispondere.",
                       "Lasciate un messaggio dopo il segnale, vi richiameremo.", "Grazie della chiamata."],
           "leave": ["Lasciate un messaggio."]},
    "nl": {"word": ["Hallo?", "Ja?", "Met Jan."],
           "short": ["Hallo, met wie spreek ik?", "Ja, hallo?"],
           "business": ["Goedemorgen, makelaardij De Vries, u spreekt met Eva, waarmee kan ik u helpen?"],
           "name": ["Pieter de Boer"],
           "prompt": ["is niet bereikbaar. Spreek een bericht in na de piep."],
           "machine": ["Hallo, dit is het antwoordapparaat van familie Jansen.", "Wij zijn er even niet.",
                       "Laat een bericht achter na de toon."],
           "leave": ["Laat een bericht achter."]},
    "pt": {"word": ["Alô?", "Sim?", "Estou?", "Olá."],
           "short": ["Alô, quem fala?", "Sim, pode falar."],
           "business": ["Bom dia, seguradora Atlântico, fala a Rita, em que posso ajudar?",
                        "Oficina Santos, boa tarde, o meu nome é João, como posso ajudá-lo?"],
           "name": ["Miguel Costa"],
           "prompt": ["não está disponível. Deixe a sua mensagem depois do sinal."],
           "machine": ["Olá, ligou para a casa da família Pereira.", "De momento não podemos atender.",
                       "Deixe a sua mensagem após o sinal e ligaremos de volta."],
           "leave": ["Deixe uma mensagem."]},
    "pl": {"word": ["Halo?", "Tak?", "Słucham?"],
           "short": ["Halo, kto mówi?", "Tak, słucham?"],
           "business": ["Dzień dobry, biuro rachunkowe Nowak, mówi Anna, w czym mogę pomóc?"],
           "name": ["Piotr Kowalski"],
           "prompt": ["jest niedostępny. Proszę zostawić wiadomość po sygnale."],
           "machine": ["Cześć, dodzwoniłeś się do Marka.", "Nie mogę teraz odebrać.",
                       "Zostaw wiadomość po sygnale, oddzwonię."],
           "leave": ["Zostaw wiadomość."]},
    "sv": {"word": ["Hallå?", "Ja?", "Det är Erik."],
           "short": ["Hallå, vem är det?", "Ja, hallå?"],
           "business": ["God morgon, Lindqvist bygg, du talar med Karin, hur kan jag hjälpa dig?"],
           "name": ["Anders Nilsson"],
           "prompt": ["kan inte svara just nu. Lämna ett meddelande efter tonen."],
           "machine": ["Hej, du har kommit till familjen Berg.", "Vi kan inte svara just nu.",
                       "Lämna ett meddelande efter tonen så ringer vi upp."],
           "leave": ["Lämna ett meddelande."]},
    "ru": {"word": ["Алло?", "Да?", "Слушаю."],
           "short": ["Алло, кто это?", "Да, слушаю вас."],
           "business": ["Добрый день, компания Северный ветер, меня зовут Ольга, чем могу помочь?"],
           "name": ["Иван Петров"],
           "prompt": ["сейчас недоступен. Оставьте сообщение после сигнала."],
           "machine": ["Здравствуйте, вы позвонили Сергею.", "Я не могу сейчас ответить.",
                       "Оставьте сообщение после сигнала, я перезвоню."],
           "leave": ["Оставьте сообщение."]},
    # Fresh languages (only the fresh split speaks them).
    "cs": {"word": ["Haló?", "Ano?", "Prosím?", "Slyším."],
           "short": ["Haló, kdo volá?", "Ano, prosím?", "Tady Petr."],
           "business": ["Dobrý den, účetní kancelář Novák, u telefonu Jana, jak vám mohu pomoci?",
                        "Autoservis Dvořák, dobré ráno, tady Martin, co pro vás mohu udělat?"],
           "name": ["Jiří Svoboda", "Lenka"],
           "prompt": ["není momentálně k zastižení. Zanechte prosím vzkaz po zaznění tónu."],
           "machine": ["Dobrý den, dovolali jste se k Novákovým.", "Teď nemůžeme hovor přijmout.",
                       "Zanechte nám vzkaz po pípnutí, zavoláme zpět.", "Děkujeme, že jste zavolali."],
           "leave": ["Zanechte vzkaz."]},
    "fi": {"word": ["Haloo?", "Niin?", "Joo?", "Virtanen."],
           "short": ["Haloo, kuka soittaa?", "Joo, haloo?", "Täällä Mikko."],
           "business": ["Hyvää huomenta, tilitoimisto Korhonen, Anna puhelimessa, miten voin auttaa?",
                        "Autokorjaamo Nieminen, hyvää päivää, täällä Jari, kuinka voin palvella?"],
           "name": ["Matti Virtanen", "Liisa"],
           "prompt": ["ei voi juuri nyt vastata. Jätä viesti äänimerkin jälkeen."],
           "machine": ["Hei, olet soittanut Laineen perheelle.", "Emme pääse juuri nyt puhelimeen.",
                       "Jätä viesti äänimerkin jälkeen, niin soitamme takaisin.", "Kiitos soitostasi."],
           "leave": ["Jätä viesti."]},
    "hu": {"word": ["Halló?", "Igen?", "Tessék?", "Hallgatom."],
           "short": ["Halló, ki beszél?", "Igen, tessék?", "Itt Péter."],
           "business": ["Jó napot, Kovács és Társa könyvelőiroda, Eszter vagyok, miben segíthetek?",
                        "Szabó autószerviz, jó reggelt, Gábor beszél, mivel szolgálhatok?"],
           "name": ["Nagy László", "Katalin"],
           "prompt": ["jelenleg nem elérhető. Kérem, hagyjon üzenetet a sípszó után."],
           "machine": ["Szia, a Tóth családot hívtad.", "Most nem tudjuk felvenni a telefont.",
                       "Hagyj üzenetet a sípszó után, és visszahívunk.", "Köszönjük a hívást."],
           "leave": ["Hagyjon üzenetet."]},
    "tr": {"word": ["Alo?", "Efendim?", "Evet?", "Buyrun."],
           "short": ["Alo, kim arıyor?", "Evet, buyrun?", "Ben Ayşe."],
           "business": ["Günaydın, Yıldız Sigorta, ben Elif, size nasıl yardımcı olabilirim?",
                        "Demir Oto Servis, iyi günler, ben Murat, buyrun, sizi dinliyorum."],
           "name": ["Mehmet Kaya", "Zeynep"],
           "prompt": ["şu anda ulaşılamıyor. Lütfen sinyal sesinden sonra mesajınızı bırakın."],
           "machine": ["Merhaba, Öztürk ailesini aradınız.", "Şu anda telefona cevap veremiyoruz.",
                       "Sinyal sesinden sonra mesaj bırakın, sizi geri arayacağız.", "Aradığınız için teşekkürler."],
           "leave": ["Mesaj bırakın."]},
    "el": {"word": ["Εμπρός;", "Ναι;", "Παρακαλώ;", "Λέγετε."],
           "short": ["Εμπρός, ποιος είναι;", "Ναι, παρακαλώ;", "Ο Γιώργος εδώ."],
           "business": ["Καλημέρα, ασφαλιστικό γραφείο Παπαδόπουλος, είμαι η Μαρία, πώς μπορώ να σας βοηθήσω;",
                        "Συνεργείο Νικολάου, καλησπέρα, ο Κώστας εδώ, τι θα θέλατε;"],
           "name": ["Νίκος Παπαδάκης", "Ελένη"],
           "prompt": ["δεν είναι διαθέσιμος. Αφήστε μήνυμα μετά τον ήχο."],
           "machine": ["Γεια σας, καλέσατε την οικογένεια Γεωργίου.", "Αυτή τη στιγμή δεν μπορούμε να απαντήσουμε.",
                       "Αφήστε μήνυμα μετά τον ήχο και θα σας καλέσουμε.", "Ευχαριστούμε για την κλήση."],
           "leave": ["Αφήστε μήνυμα."]},
    "ro": {"word": ["Alo?", "Da?", "Vă ascult.", "Poftiți?"],
           "short": ["Alo, cine e la telefon?", "Da, alo?", "Sunt Andrei."],
           "business": ["Bună ziua, cabinetul de avocatură Popescu, sunt Ioana, cu ce vă pot ajuta?",
                        "Service auto Ionescu, bună dimineața, la telefon Mihai, cu ce vă putem ajuta?"],
           "name": ["Ion Popescu", "Elena"],
           "prompt": ["nu este disponibil. Vă rugăm să lăsați un mesaj după semnalul sonor."],
           "machine": ["Bună, ați sunat la familia Georgescu.", "Nu putem răspunde acum.",
                       "Lăsați un mesaj după semnal și vă sunăm înapoi.", "Mulțumim pentru apel."],
           "leave": ["Lăsați un mesaj."]},
    "da": {"word": ["Hallo?", "Ja?", "Det er Lars."],
           "short": ["Hallo, hvem taler jeg med?", "Ja, hallo?"],
           "business": ["Godmorgen, Hansen Revision, det er Mette, hvad kan jeg hjælpe med?"],
           "name": ["Søren Jensen"],
           "prompt": ["kan ikke tage telefonen lige nu. Indtal en besked efter tonen."],
           "machine": ["Hej, du har ringet til familien Nielsen.", "Vi kan ikke tage telefonen lige nu.",
                       "Læg en besked efter tonen, så ringer vi tilbage."],
           "leave": ["Læg en besked."]},
    "ca": {"word": ["Digui?", "Sí?", "Hola?", "Sí, digui."],
           "short": ["Hola, qui és?", "Sí, digui'm.", "Sóc la Montse."],
           "business": ["Bon dia, gestoria Puig, li parla la Núria, en què el puc ajudar?",
                        "Taller Ferrer, bona tarda, sóc en Jordi, què necessita?"],
           "name": ["Josep Vidal", "Laia"],
           "prompt": ["no està disponible. Deixi el seu missatge després del senyal."],
           "machine": ["Hola, has trucat a casa de la família Serra.", "Ara mateix no podem atendre la trucada.",
                       "Deixa'ns un missatge després del senyal i et trucarem.", "Gràcies per trucar."],
           "leave": ["Deixi un missatge."]},
}

HUMAN_KINDS = ("h_word", "h_word_twice", "h_short_again", "h_business")
HUMAN_WEIGHTS = (0.35, 0.2, 0.25, 0.2)
MACHINE_KINDS = ("m_long_beep", "m_short_beep", "m_short_nobeep", "m_name_jump", "m_pauses", "m_music",
                 "m_long_nobeep")
MACHINE_WEIGHTS = (0.2, 0.2, 0.12, 0.14, 0.14, 0.1, 0.1)


@dataclass(frozen=True)
class BroadItem:
    """One labelled recording and its groups."""

    name: str
    label: str                   # human | machine
    first_utterance_end_ms: int
    speech_start_ms: int
    beep_ms: int | None
    voice: str
    language: str
    kind: str
    impairment: str
    duration_ms: int
    speech_frames: bytes = b""   # per 20 ms frame: 1 where the answer's own speech is (clean audio)


# ---------------------------------------------------------------------------------- sources
def _read_any(path: Path) -> np.ndarray:
    """A prompt file as 8 kHz float samples (GSM through sox, cached)."""
    import soundfile as sf
    if path.suffix == ".gsm":
        key = hashlib.sha1(str(path).encode()).hexdigest()[:16]
        CACHE.mkdir(parents=True, exist_ok=True)
        out = CACHE / f"gsm-{key}.wav"
        if not out.exists():
            tmp = CACHE / f"gsm-{key}.{os.getpid()}.wav"
            subprocess.run(["sox", str(path), "-r", str(RATE), "-c", "1", "-b", "16", str(tmp)],
                           check=True, capture_output=True)
            os.replace(tmp, out)
        path = out
    data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    x = data[:, 0] * 32768.0
    if rate != RATE:
        from callcenter.cli.amd import resample
        x = resample(x, int(rate))
    return x


@lru_cache(maxsize=None)
def _clips(voice: str) -> tuple[tuple[str, str, float], ...]:
    """(language, path, seconds) of every prompt of a recorded voice."""
    import soundfile as sf
    out = []
    for lang, sub, ext in RECORDED[voice]:
        d = SOUNDS / sub
        if not d.is_dir():
            continue
        for p in sorted(d.glob(f"*.{ext}")):
            if any(s in p.stem for s in ("beep", "tone", "silence")) or p.stem.startswith("tt-"):
                continue
            secs = p.stat().st_size / 33 * 0.02 if ext == "gsm" else sf.info(str(p)).duration
            out.append((lang, str(p), secs))
    return tuple(out)


def recorded_available(voice: str = "june") -> bool:
    return bool(_clips(voice))


@lru_cache(maxsize=4096)
def _clip(path: str) -> np.ndarray:
    return _trim(_read_any(Path(path)))


def _pick_clip(rng: np.random.Generator, voice: str, lang: str, lo: float, hi: float) -> np.ndarray:
    pool = [p for lg, p, s in _clips(voice) if lg == lang and lo <= s <= hi]
    if not pool:
        pool = [p for lg, p, s in _clips(voice) if lg == lang]
    return _clip(pool[int(rng.integers(len(pool)))])


@lru_cache(maxsize=None)
def synth_available(voice: str) -> bool:
    """Whether a "flite:VOICE" / "festival:VOICE" voice is installed (make sysdeps)."""
    engine, name = voice.split(":", 1)
    if engine == "flite":
        if not shutil.which("flite"):
            return False
        listed = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        return name in listed.split(":", 1)[-1].split()
    return bool(shutil.which("text2wave")) and any(FESTIVAL_VOICES.glob(f"*/{name}"))


def _synth(text: str, voice: str, stretch: float) -> np.ndarray:
    """flite or festival -> sox (8 kHz mono 16-bit, band-pass 300-3400 Hz as :func:`_espeak`, no
    dither, so the same on every machine), cached on disk. ``stretch`` lengthens durations (1.0 =
    the voice's own pace)."""
    engine, name = voice.split(":", 1)
    key = hashlib.sha1(f"{voice}|{stretch:.2f}|{text}".encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"synd-{key}.wav"
    if not out.exists():
        raw = CACHE / f"synd-{key}.{os.getpid()}.raw.wav"
        txt = CACHE / f"synd-{key}.{os.getpid()}.txt"
        if engine == "flite":
            cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={stretch:.2f}", "-t", text, "-o", str(raw)]
        else:
            txt.write_bytes(text.encode(FESTIVAL[name][1]))
            cmd = ["text2wave", "-eval", f"(voice_{name})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch:.2f})",
                   "-o", str(raw), str(txt)]
        subprocess.run(cmd, check=True, capture_output=True)
        tmp = CACHE / f"synd-{key}.{os.getpid()}.wav"
        subprocess.run(["sox", "-D", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(tmp), "sinc", "300-3400"],
                       check=True, capture_output=True)
        os.replace(tmp, out)
        raw.unlink(missing_ok=True)
        txt.unlink(missing_ok=True)
    return _trim(_read_wav(out))


class _Speaker:
    """Speech of one voice in one language: texts through espeak-ng, flite or festival, or recorded
    prompts."""

    def __init__(self, rng: np.random.Generator, voice: str):
        self.rng, self.voice = rng, voice
        self.recorded = voice in RECORDED
        self.synth = ":" in voice
        if self.recorded:
            langs = sorted({lg for lg, _, _ in _clips(voice)})
            self.lang = langs[int(rng.integers(len(langs)))]
        else:
            self.lang = _lang_of(voice)
        self.speed = int(rng.integers(140, 195))

    def say(self, what: str) -> np.ndarray:
        r = self.rng
        if self.recorded:
            lo, hi = {"word": (0.25, 0.9), "short": (0.6, 1.6), "name": (0.4, 1.2), "leave": (1.2, 2.4),
                      "prompt": (1.5, 4.0), "machine": (1.0, 4.0), "business": (1.0, 2.5)}[what]
            return _pick_clip(r, self.voice, self.lang, lo, hi)
        texts = TEXTS[self.lang][what]
        text = texts[int(r.integers(len(texts)))]
        if self.synth:  # espeak's 140-195 words a minute as a duration stretch, in steps of 0.1
            return _synth(text, self.voice, round(170 / self.speed, 1))
        # Fresh voices without sox's random dither: that split is made anew, once, on any machine.
        return _espeak(text, self.voice, self.speed, dither=self.voice not in _ES_FRESH_SET)


def _sil(ms: float) -> np.ndarray:
    return np.zeros(int(ms * RATE / 1000))


def _beep(rng: np.random.Generator) -> np.ndarray:
    freq = float(rng.choice([1000.0, 850.0, rng.uniform(440, 1500)]))
    dur = float(rng.uniform(0.18, 0.6))
    t = np.arange(int(dur * RATE)) / RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    return np.sin(2 * np.pi * freq * t) * ramp


def _music(rng: np.random.Generator, secs: float) -> np.ndarray:
    """Chords of harmonic-rich notes changing every 0.25-0.6 s (hold music)."""
    out = []
    total = 0
    while total < secs * RATE:
        n = int(rng.uniform(0.25, 0.6) * RATE)
        t = np.arange(n) / RATE
        root = 220.0 * 2 ** (int(rng.integers(0, 12)) / 12)
        note = np.zeros(n)
        for ratio in (1.0, 1.26, 1.5):
            for h in (1, 2, 3):
                note += np.sin(2 * np.pi * root * ratio * h * t + rng.uniform(0, 6.3)) / h
        env = np.minimum(1.0, t / 0.02) * np.exp(-t * rng.uniform(0.5, 3.0))
        out.append(note * env)
        total += n
    return np.concatenate(out)


def _join(rng: np.random.Generator, pieces: list[np.ndarray], gap: tuple[float, float]) -> np.ndarray:
    parts: list[np.ndarray] = []
    for i, p in enumerate(pieces):
        if i:
            parts.append(_sil(rng.uniform(*gap)))
        parts.append(p)
    return np.concatenate(parts)


def _until(rng: np.random.Generator, sp: _Speaker, what: str, lo_s: float, hi_s: float,
           gap: tuple[float, float]) -> np.ndarray:
    """Phrases joined by gaps until the total lies in [lo_s, hi_s] (or as close as it gets)."""
    target = rng.uniform(lo_s, hi_s) * RATE
    pieces = [sp.say(what)]
    tries = 0
    while sum(len(p) for p in pieces) < target and tries < 12:
        pieces.append(sp.say(what))
        tries += 1
    x = _join(rng, pieces, gap)
    limit = int(hi_s * RATE)
    if len(x) > limit and len(pieces) > 1:
        x = x[:limit]
        ramp = np.minimum(1.0, np.arange(len(x))[::-1] / 200.0)
        x = x * ramp
    return x


# ---------------------------------------------------------------------------------- shapes
def _human(rng: np.random.Generator, kind: str, sp: _Speaker, level: float) -> list[tuple[np.ndarray, bool]]:
    """Segments (audio, is_speech) of a person's answer."""
    n = lambda x: _normalise(x, level * rng.uniform(0.8, 1.25))  # noqa: E731
    lead = (_sil(rng.uniform(0, 1500)), False)
    if kind == "h_word":
        seg = [lead, (n(sp.say("word")), True), (_sil(rng.uniform(2000, 3500)), False)]
        if rng.random() < 0.5:
            seg += [(n(sp.say("word")), True), (_sil(rng.uniform(800, 2000)), False)]
        return seg
    if kind == "h_word_twice":
        w = n(sp.say("word"))
        return [lead, (w, True), (_sil(rng.uniform(300, 1200)), False), (n(sp.say("word")), True),
                (_sil(rng.uniform(2500, 3500)), False)]
    if kind == "h_short_again":
        return [lead, (n(sp.say("short")), True), (_sil(rng.uniform(1500, 3000)), False),
                (n(sp.say("word")), True), (_sil(rng.uniform(800, 2000)), False)]
    # h_business: a 3-5 s company greeting; the person then waits and asks again.
    g = _until(rng, sp, "business", 3.0, 4.8, (60, 250)) if sp.recorded else sp.say("business")
    return [lead, (n(g), True), (_sil(rng.uniform(1500, 3000)), False), (n(sp.say("word")), True),
            (_sil(rng.uniform(800, 2000)), False)]


def _machine(rng: np.random.Generator, kind: str, sp: _Speaker, other: _Speaker,
             level: float) -> tuple[list[tuple[np.ndarray, bool]], bool]:
    """Segments of a machine's greeting, and whether a beep follows."""
    n = lambda x, g=1.0: _normalise(x, level * g)  # noqa: E731
    lead = (_sil(rng.uniform(0, 1200)), False)
    gap = (100, 400)
    if kind == "m_long_beep":
        return [lead, (n(_until(rng, sp, "machine", 5.0, 12.0, gap)), True)], True
    if kind == "m_long_nobeep":
        return [lead, (n(_until(rng, sp, "machine", 5.0, 12.0, gap)), True)], False
    if kind == "m_short_beep":
        return [lead, (n(_until(rng, sp, "machine", 2.0, 4.5, gap)), True)], True
    if kind == "m_short_nobeep":
        return [lead, (n(_until(rng, sp, "leave", 1.3, 2.5, gap)), True)], False
    if kind == "m_name_jump":
        # The owner's recorded name (another voice, loud), then the system prompt 6-15 dB lower.
        drop = 10 ** (-rng.uniform(6, 15) / 20)
        name = n(other.say("name"), 1.6)
        prompt = n(_until(rng, sp, "prompt", 2.0, 6.0, gap), 1.6 * drop)
        return [lead, (name, True), (_sil(rng.uniform(80, 400)), False), (prompt, True)], rng.random() < 0.7
    if kind == "m_pauses":
        return [lead, (n(_until(rng, sp, "machine", 4.0, 10.0, (400, 900))), True)], rng.random() < 0.6
    # m_music: hold music before the greeting, or under it.
    g = n(_until(rng, sp, "machine", 3.0, 9.0, gap))
    m = _music(rng, rng.uniform(1.0, 3.0))
    m = m / max(float(np.sqrt((m ** 2).mean())), 1e-9) * level * rng.uniform(0.3, 0.8)
    if rng.random() < 0.5:
        return [lead, (m, True), (g, True)], rng.random() < 0.6
    under = np.resize(m, len(g)) * 0.3
    return [lead, (g + under, True)], rng.random() < 0.6


# ---------------------------------------------------------------------------------- line effects
def _sox(x: np.ndarray, enc: list[str], effects: list[str] | None = None) -> np.ndarray:
    """A round trip of int16 audio through a sox encoding (and effects); no dither (-D), so the
    corpus is the same on every run."""
    raw = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    fmt = ["-t", "raw", "-r", str(RATE), "-c", "1", "-e", "signed", "-b", "16"]
    if enc:
        coded = subprocess.run(["sox", "-D", *fmt, "-", "-r", str(RATE), "-c", "1", *enc, "-"], input=raw,
                               check=True, capture_output=True).stdout
        back = subprocess.run(["sox", "-D", "-r", str(RATE), "-c", "1", *enc, "-", *fmt, "-", *(effects or [])],
                              input=coded, check=True, capture_output=True).stdout
    else:
        back = subprocess.run(["sox", "-D", *fmt, "-", *fmt, "-", *(effects or [])], input=raw,
                              check=True, capture_output=True).stdout
    y = np.frombuffer(back, dtype="<i2").astype(np.float64)
    out = np.zeros(len(x))
    out[: min(len(x), len(y))] = y[: len(x)]
    return out


def _coloured(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    w = rng.standard_normal(n)
    if colour == "white":
        return w
    spec = np.fft.rfft(w)
    f = np.arange(len(spec), dtype=float)
    f[0] = 1.0
    spec /= np.sqrt(f) if colour == "pink" else f
    y = np.fft.irfft(spec, n=n)
    return y / max(float(y.std()), 1e-12)


def _babble(rng: np.random.Generator, n: int, pool: list[str]) -> np.ndarray:
    """Four to seven voices talking at once (from the same split's voices)."""
    out = np.zeros(n)
    for _ in range(int(rng.integers(4, 8))):
        sp = _Speaker(rng, pool[int(rng.integers(len(pool)))])
        parts, total = [], 0
        while total < n:
            s = sp.say(str(rng.choice(["machine", "short", "business"]))) if not sp.recorded \
                else sp.say("machine")
            s = s / max(float(np.sqrt((s ** 2).mean())), 1e-9)
            parts += [s, _sil(rng.uniform(50, 300))]
            total += len(s) + len(parts[-1])
        y = np.concatenate(parts)
        off = int(rng.integers(0, max(1, len(y) - n)))
        out += y[off: off + n]
    return out / max(float(out.std()), 1e-12)


def _room(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A room heard through a speakerphone: sox reverb (reverberance, HF damping, room scale,
    pre-delay, wet gain drawn), run at a safe level and scaled back."""
    peak = max(float(np.abs(x).max()), 1.0)
    args = [str(int(rng.uniform(30, 95))), str(int(rng.uniform(20, 90))), str(int(rng.uniform(40, 100))), "100",
            str(int(rng.uniform(0, 40))), f"{rng.uniform(-6, 0):.1f}"]
    return _sox(x * (6000 / peak), [], ["reverb", *args]) * (peak / 6000)


def _impair(rng: np.random.Generator, clean: np.ndarray, level: float, pool: list[str],
            kind: str, room: bool = False) -> tuple[np.ndarray, str]:
    tags: list[str] = []
    x = clean.copy()
    if room and rng.random() < 0.2:  # fresh only: room reverb / speakerphone at the far end
        x = _room(rng, x)
        tags.append("reverb")
    if rng.random() < 0.2:  # gain drift: slow ±3-8 dB wander
        t = np.arange(len(x)) / RATE
        db = rng.uniform(3, 8) * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3))
        x = x * 10 ** (db / 20)
        tags.append("drift")
    r = rng.random()
    babble_low = kind == "h_word" and rng.random() < 0.35
    if babble_low or r < 0.3:
        snr = rng.uniform(3, 12) if babble_low else rng.uniform(10, 30)
        x = x + _babble(rng, len(x), pool) * level * 10 ** (-snr / 20)
        tags.append(f"babble{int(snr // 10 * 10)}")
    elif r < 0.65:
        colour = str(rng.choice(["white", "pink", "brown"]))
        snr = rng.uniform(10, 30)
        x = x + _coloured(rng, len(x), colour) * level * 10 ** (-snr / 20)
        tags.append(f"{colour}{int(snr // 10 * 10)}")
    if rng.random() < 0.15:  # clipping at the far end
        lim = float(np.abs(x).max()) * rng.uniform(0.2, 0.5)
        x = np.clip(x, -lim, lim)
        tags.append("clip")
    codec = str(rng.choice(["none", "ulaw", "alaw", "gsm"], p=[0.25, 0.3, 0.2, 0.25]))
    band = rng.random() < 0.3
    if codec != "none" or band:
        enc = {"none": [], "ulaw": ["-t", "ul"], "alaw": ["-t", "al"], "gsm": ["-t", "gsm"]}[codec]
        effects = ["sinc", f"{int(rng.uniform(250, 400))}-{int(rng.uniform(3000, 3400))}"] if band else []
        x = _sox(x, enc, effects)
        if codec != "none":
            tags.append(codec)
        if band:
            tags.append("band")
    if rng.random() < 0.2:  # lost packets: 20 ms frames zeroed (no concealment), in bursts
        nfr = len(x) // FRAME
        rate = rng.uniform(0.02, 0.1)
        lost = rng.random(nfr) < rate / 2
        lost |= np.roll(lost, 1) & (rng.random(nfr) < 0.5)
        x[: nfr * FRAME].reshape(nfr, FRAME)[lost] = 0.0
        tags.append("loss")
    return x, "+".join(tags) or "clean"


# ---------------------------------------------------------------------------------- corpus
def voices(split: str) -> list[str]:
    """The voices of a split (recorded and flite/festival ones only when installed)."""
    s = SPLITS[split]
    return [v for v in s["recorded"] if _clips(v)] + list(s["espeak"]) + [
        v for v in s.get("synth", []) if synth_available(v)]


def make_item(seed: int, i: int, split: str) -> tuple[BroadItem, np.ndarray]:
    """Recording ``i`` of a split, deterministic from (seed, i)."""
    rng = np.random.default_rng([seed, i, {"train": 0, "test": 1, "fresh": 2}[split]])
    pool = voices(split)
    rec = [v for v in pool if v in RECORDED or ":" in v]
    # Half of the recordings from recorded voices (fresh: flite/festival) when installed, half from espeak-ng.
    voice = str(rng.choice(rec)) if rec and rng.random() < 0.5 else str(rng.choice(SPLITS[split]["espeak"]))
    sp = _Speaker(rng, voice)
    level = float(rng.uniform(600, 4000))
    label = "human" if i % 2 == 0 else "machine"
    beep_at = None
    if label == "human":
        kind = str(rng.choice(HUMAN_KINDS, p=HUMAN_WEIGHTS))
        segs = _human(rng, kind, sp, level)
    else:
        kind = str(rng.choice(MACHINE_KINDS, p=MACHINE_WEIGHTS))
        other_pool = [v for v in pool if v != voice and (v in RECORDED) == sp.recorded] or [voice]
        other = _Speaker(rng, str(rng.choice(other_pool)))
        segs, beep = _machine(rng, kind, sp, other, level)
        if beep:
            silence_ms = rng.uniform(200, 1000) if kind == "m_short_beep" else rng.uniform(150, 1200)
            segs.append((_sil(silence_ms), False))
            beep_at = sum(len(a) for a, _ in segs)
            segs.append((_beep(rng) * level * rng.uniform(1.0, 3.0), False))
        segs.append((_sil(rng.uniform(1500, 3000)), False))
    # The line stays open: at least 9 s in all (a detector must be able to hear the silence).
    segs.append((_sil(max(0.0, 9000 - sum(len(a) for a, _ in segs) / 8)), False))
    clean = np.concatenate([a for a, _ in segs])
    speech = np.concatenate([a if s else np.zeros(len(a)) for a, s in segs])
    start, end = _first_utterance(speech)
    noisy, impairment = _impair(rng, clean, level, pool, kind, room=split == "fresh")
    audio = np.clip(np.round(noisy), -32768, 32767).astype(np.int16)
    item = BroadItem(name=f"{split}-{seed}-{i:05d}-{label}", label=label, first_utterance_end_ms=end,
                     speech_start_ms=start, beep_ms=None if beep_at is None else round(beep_at * 1000 / RATE),
                     voice=voice, language=sp.lang, kind=kind, impairment=impairment,
                     duration_ms=int(len(audio) * 1000 / RATE),
                     speech_frames=np.asarray(_active_frames(speech), dtype=np.uint8).tobytes())
    return item, audio


def generate(seed: int, count: int, split: str = "train") -> list[tuple[BroadItem, np.ndarray]]:
    """``count`` recordings (half people) of a split."""
    if split not in SPLITS:
        raise ValueError(f"split must be train, test or fresh, not {split!r}")
    return [make_item(seed, i, split) for i in range(count)]


LABEL_COLUMNS = ("file", "label", "first_utterance_end_s", "speech_start_s", "beep_s", "voice", "language",
                 "kind", "impairment")


def write(outdir: Path, items: list[tuple[BroadItem, np.ndarray]]) -> Path:
    """``NAME.wav`` files and ``labels.csv``; the path of labels.csv."""
    import soundfile as sf
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / "labels.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(LABEL_COLUMNS)
        for it, audio in items:
            sf.write(str(outdir / f"{it.name}.wav"), audio, RATE, subtype="PCM_16")
            w.writerow([f"{it.name}.wav", it.label, f"{it.first_utterance_end_ms / 1000:.3f}",
                        f"{it.speech_start_ms / 1000:.3f}",
                        "" if it.beep_ms is None else f"{it.beep_ms / 1000:.3f}",
                        it.voice, it.language, it.kind, it.impairment])
    return path


def as_dict(it: BroadItem) -> dict:
    return asdict(it)


def _worker(args: tuple[int, int, str]) -> tuple[BroadItem, np.ndarray]:
    return make_item(*args)


def generate_parallel(seed: int, count: int, split: str, jobs: int = 2) -> list[tuple[BroadItem, np.ndarray]]:
    """:func:`generate` over ``jobs`` processes (same result)."""
    if jobs <= 1:
        return generate(seed, count, split)
    from multiprocessing import Pool
    with Pool(jobs) as p:
        return p.map(_worker, [(seed, i, split) for i in range(count)], chunksize=8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.amd_broad", description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--count", type=int, default=400)
    p.add_argument("--split", choices=sorted(SPLITS), default="test")
    p.add_argument("--jobs", type=int, default=1)
    a = p.parse_args(argv)
    if not recorded_available():
        print(f"amd_broad: recorded prompts missing under {SOUNDS} (make sysdeps); espeak-only", file=sys.stderr)
    missing = [v for v in SPLITS[a.split].get("synth", []) if not synth_available(v)]
    if missing:
        print(f"amd_broad: not installed (make sysdeps): {', '.join(missing)}", file=sys.stderr)
    print(write(Path(a.outdir), generate_parallel(a.seed, a.count, a.split, a.jobs)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
