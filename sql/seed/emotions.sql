-- Emotion classes in FER-2013 order plus contempt, with the label names datasets use
-- (lower case; label folders and CSV labels are matched case-insensitively against synonyms).
-- init_catalog merges these rows on emotion_id: a re-run commits nothing, an edit here updates.
SELECT * FROM VALUES
  (0, 'angry',    array('angry', 'anger', 'mad', 'rage', 'annoyed'),                    'negative'),
  (1, 'disgust',  array('disgust', 'disgusted', 'disgusting', 'revulsion'),              'negative'),
  (2, 'fear',     array('fear', 'fearful', 'scared', 'afraid', 'frightened', 'fright'),  'negative'),
  (3, 'happy',    array('happy', 'happiness', 'joy', 'joyful', 'smile', 'smiling'),      'positive'),
  (4, 'sad',      array('sad', 'sadness', 'unhappy', 'sorrow', 'crying'),                'negative'),
  (5, 'surprise', array('surprise', 'surprised', 'astonished', 'amazed', 'shock'),       'neutral'),
  (6, 'neutral',  array('neutral', 'calm', 'expressionless', 'blank'),                   'neutral'),
  (7, 'contempt', array('contempt', 'contemptuous', 'disdain', 'scorn'),                 'negative')
  AS seed(emotion_id, name, synonyms, valence)
